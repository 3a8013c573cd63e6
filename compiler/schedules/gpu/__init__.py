"""edgeprune's own GPU schedule rules, for what TVM's dlight rules get wrong or leave out.

They are dlight ``ScheduleRule``s, so they sit in the same rule list as TVM's
(``compiler.gpu_build.gpu_rules``).
"""

from edgeprune.compiler.schedules.gpu.small_reduction import SmallReduction

__all__ = ["SmallReduction"]
