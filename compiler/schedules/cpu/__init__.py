"""CPU schedule rules, most specific first; ``Generic`` takes whatever the others leave."""

from __future__ import annotations

from edgeprune.compiler.schedules.base import ScheduleRule
from edgeprune.compiler.schedules.cpu.conv1x1 import Conv1x1
from edgeprune.compiler.schedules.cpu.conv2d import Conv2d
from edgeprune.compiler.schedules.cpu.depthwise import DepthwiseConv
from edgeprune.compiler.schedules.cpu.depthwise_pointwise import DepthwisePointwise
from edgeprune.compiler.schedules.cpu.expand_depthwise import ExpandDepthwise
from edgeprune.compiler.schedules.cpu.generic import Generic
from edgeprune.compiler.schedules.cpu.matmul import Matmul
from edgeprune.compiler.schedules.cpu.pool import Pool2d
from edgeprune.compiler.schedules.cpu.resize import Resize2d, ResizeRows, SeparableResize2d
from edgeprune.compiler.schedules.cpu.row_reduction import RowReduction
from edgeprune.compiler.schedules.cpu.softmax import Softmax
from edgeprune.compiler.schedules.cpu.sparse_conv import SparseConv
from edgeprune.compiler.target import Hardware

RULE_CLASSES: tuple[type[ScheduleRule], ...] = (
    SparseConv, ExpandDepthwise, DepthwisePointwise, Conv1x1, DepthwiseConv, Conv2d, Matmul, Softmax, Pool2d,
    SeparableResize2d, ResizeRows, Resize2d, RowReduction, Generic,
)


def cpu_rules(hw: Hardware) -> list[ScheduleRule]:
    return [cls(hw) for cls in RULE_CLASSES]
