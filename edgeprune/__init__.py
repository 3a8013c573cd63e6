"""edgeprune: from a PyTorch segmentation checkpoint to a measured frame rate on a phone.

One import package. Its stages are subpackages: ``edgeprune.pruning`` (models, data,
training, pruning, slicing), ``edgeprune.compiler`` (TVM import, fusion, schedules, targets,
build), ``edgeprune.device`` (runners, stats, history), with the tuner above both
(``edgeprune.compiler.tuner``). ``edgeprune.base`` is what they all share; ``edgeprune.cli``,
``edgeprune.report`` and ``edgeprune.demo`` sit on top. Imports point one way only (see
``tests/test_layers.py``).
"""

__version__ = "0.1.0"
