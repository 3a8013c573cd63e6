"""The version check every edgeprune file format makes before reading the rest.

Artifacts, checkpoints, targets files, the results history, tuning logs and the sparse weight
format each carry a version field; a file of another version is refused with one message
naming the file, the field and both versions, instead of being misread.
"""

from __future__ import annotations

from edgeprune.base.errors import EdgepruneError


class UnsupportedVersion(EdgepruneError, ValueError):
    """A file of a format version this edgeprune does not read (a ``ValueError`` too, for
    readers that wrap the problems of one record or array in their own message)."""


def check_version(found: object, supported: int, where: str = "", field: str = "format_version") -> None:
    """Raises ``UnsupportedVersion`` unless ``found == supported``; ``where`` names the file."""
    if found != supported:
        prefix = f"{where}: " if where else ""
        raise UnsupportedVersion(f"{prefix}{field} {found!r} is not supported (this edgeprune reads {supported})")
