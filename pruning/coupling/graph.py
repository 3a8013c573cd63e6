"""What ``analyze`` reports: the channel groups and one ``ConvSite`` per conv/linear.

Channels tied together must share one mask and be removed together. A ``ChannelGroup``
says where its mask goes and everything the slicer must cut; a ``ConvSite`` gives a
conv/linear's input and output channels in groups, for the differentiable MACs count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Consumer:
    module: str  # qualified name of a conv/linear whose INPUT channels read this group
    offset: int  # where the group's channels start in that module's input channels (concat)


@dataclass(frozen=True)
class ChannelGroup:
    index: int
    size: int  # number of channels
    producers: tuple[str, ...]  # convs/linears (not depth-wise) whose OUTPUT channels are exactly this group
    mask_points: tuple[str, ...]  # modules whose forward output is multiplied by the group's binary mask
    members: tuple[str, ...]  # BatchNorms and depth-wise convs sliced along their channels with the group
    consumers: tuple[Consumer, ...]
    prunable: bool
    reason: str  # "" if prunable, else why not


@dataclass(frozen=True)
class ConvSite:
    name: str
    out_group: int | None  # group of its output channels (None: fixed width)
    in_parts: tuple[tuple[int | None, int], ...]  # input channels as consecutive (group or None, count)
    groups: int  # conv groups (depth-wise: groups == in == out)
    depthwise: bool
    macs_per_pair: int  # MACs per (output channel, input channel per group): out_H*out_W*kh*kw (linear: tokens)
    out_channels: int  # full output width


@dataclass(frozen=True)
class ChannelGraph:
    groups: tuple[ChannelGroup, ...]
    sites: tuple[ConvSite, ...]
    input_shape: tuple[int, ...]
