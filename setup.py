"""Maps the stage folders into the one import package ``edgeprune`` (metadata: pyproject.toml).

``pruning/``, ``compiler/`` and ``device/`` stay at the top of the repository and install as
``edgeprune.pruning``, ``edgeprune.compiler`` and ``edgeprune.device``, so nothing generic lands
in a user's site-packages. Subpackages are found here rather than listed, so a new folder
cannot be left out of the wheel.
"""

from setuptools import find_packages, setup

STAGES = ("pruning", "compiler", "device")

package_dir = {"edgeprune": "edgeprune"}
packages = find_packages(include=["edgeprune", "edgeprune.*"])
for stage in STAGES:
    package_dir[f"edgeprune.{stage}"] = stage
    packages += [f"edgeprune.{stage}"] + [f"edgeprune.{stage}.{sub}" for sub in find_packages(stage)]

setup(packages=packages, package_dir=package_dir)
