"""CPU schedule rules, most specific first; ``Generic`` takes whatever the others leave."""

from __future__ import annotations

from compiler.schedules.base import ScheduleRule
from compiler.schedules.cpu.conv1x1 import Conv1x1
from compiler.schedules.cpu.conv2d import Conv2d
from compiler.schedules.cpu.depthwise import DepthwiseConv
from compiler.schedules.cpu.depthwise_pointwise import DepthwisePointwise
from compiler.schedules.cpu.expand_depthwise import ExpandDepthwise
from compiler.schedules.cpu.generic import Generic
from compiler.schedules.cpu.matmul import Matmul
from compiler.schedules.cpu.pool import Pool2d
from compiler.schedules.cpu.resize import Resize2d, ResizeRows, SeparableResize2d
from compiler.schedules.cpu.softmax import Softmax
from compiler.schedules.cpu.sparse_conv import SparseConv
from compiler.target import Hardware

RULE_CLASSES: tuple[type[ScheduleRule], ...] = (
    SparseConv, ExpandDepthwise, DepthwisePointwise, Conv1x1, DepthwiseConv, Conv2d, Matmul, Softmax, Pool2d,
    SeparableResize2d, ResizeRows, Resize2d, Generic,
)


def cpu_rules(hw: Hardware) -> list[ScheduleRule]:
    return [cls(hw) for cls in RULE_CLASSES]
