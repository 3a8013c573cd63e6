"""Channel layouts: the channels along one axis of a tensor as consecutive segments of spaces.

Every conv/linear output is a *space* of channels; a layout says which channels of which
spaces a tensor carries along its channel axis, in order (a concat joins layouts, a split or
slice cuts them), and whether a masked channel of the space is still exactly zero there.
Channels of no space (the model input, parameters) are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Seg:
    """Consecutive channels ``start:start+length`` of a space (None: fixed-width channels)."""

    space: int | None
    start: int
    length: int
    zero: bool = True  # a masked channel of the space is exactly zero here
    lost: str = ""  # where it stopped being zero


@dataclass(frozen=True)
class Layout:
    """What the channels along axis ``dim`` of a tensor are, as consecutive segments."""

    dim: int
    segs: tuple[Seg, ...]

    @property
    def width(self) -> int:
        return sum(seg.length for seg in self.segs)

    def nonzero(self, where: str) -> Layout:
        return Layout(self.dim, tuple(lose(seg, where) for seg in self.segs))

    def zeroed(self) -> Layout:
        return Layout(self.dim, tuple(replace(seg, zero=True, lost="") for seg in self.segs))


def lose(seg: Seg, where: str) -> Seg:
    return replace(seg, zero=False, lost=where) if seg.zero else seg


def fixed(width: int) -> tuple[Seg, ...]:
    return (Seg(None, 0, width),)


def cut(segs: tuple[Seg, ...], start: int, stop: int) -> tuple[Seg, ...]:
    """The segments covering channels ``start:stop``."""
    out, pos = [], 0
    for seg in segs:
        lo, hi = max(start, pos), min(stop, pos + seg.length)
        if lo < hi:
            out.append(replace(seg, start=seg.start + lo - pos, length=hi - lo))
        pos += seg.length
    return tuple(out)


def pieces(a: tuple[Seg, ...], b: tuple[Seg, ...]) -> Iterator[tuple[Seg, Seg]]:
    """Pairs of equally long sub-segments of two layouts of the same width."""
    bounds = sorted({0, *ends(a), *ends(b)})
    for lo, hi in zip(bounds, bounds[1:]):
        yield cut(a, lo, hi)[0], cut(b, lo, hi)[0]


def ends(segs: tuple[Seg, ...]) -> list[int]:
    ends, pos = [], 0
    for seg in segs:
        pos += seg.length
        ends.append(pos)
    return ends


def layouts(value: Any) -> Iterator[Layout]:
    if isinstance(value, Layout):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from layouts(item)
    elif isinstance(value, dict):
        yield from layouts(list(value.values()))
