"""GPU (Adreno OpenCL) schedule rules, in the order the registry tries them.

TVM's Adreno dlight rules first (Conv2d, LayoutTransform, Pool2D, which take the texture
layouts), then the generic GPU rules Matmul and GEMV (TVM's Adreno pipeline has neither: its
convs and matmuls would otherwise get the one-thread-per-output Fallback), edgeprune's
``SmallReduction`` (depth-wise convs and pools, which TVM's rules schedule badly or, for
one-element reductions, wrongly), then Reduction, GeneralReduction and Fallback, which takes
everything. Each is wrapped as a ``DlightRule``, the interface the CPU rules have.
"""

from __future__ import annotations

import tvm
from tvm.s_tir import dlight as dl

from edgeprune.compiler.schedules.gpu.dlight_rule import DlightRule
from edgeprune.compiler.schedules.gpu.small_reduction import SmallReduction

__all__ = ["DlightRule", "SmallReduction", "gpu_rules"]


def gpu_rules(target: tvm.target.Target) -> list[DlightRule]:
    rules = [
        dl.adreno.Conv2d(), dl.adreno.LayoutTransform(), dl.adreno.Pool2D(),
        dl.gpu.Matmul(), dl.gpu.GEMV(), SmallReduction(),
        dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback(),
    ]
    return [DlightRule(rule, target) for rule in rules]
