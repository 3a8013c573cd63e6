"""Read a convolution's geometry back from the TIR that LegalizeOps produced.

After FuseTIR the Relax attributes are gone; the anchor block ``conv2d_nchw`` /
``group_conv2d_nchw`` still has iteration variables ``n, f, y, x, rc, ry, rx`` and reads
``pad_temp[n, c, y*sh + ry*dh, x*sw + rx*dw]`` (or the input directly), where ``pad_temp`` is
written by a ``pad_temp`` block reading ``input[n, c, h - pt, w - pl]``. Strides, dilations
and paddings are the coefficients of those index expressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir
from tvm.sym import detect_linear_equation

from edgeprune.compiler.schedules.base import Workload, block_named, blocks_of, iter_kinds

CONV_ANCHORS = ("conv2d_nchw", "group_conv2d_nchw")


@dataclass(frozen=True)
class ConvGeometry:
    n: int
    ci: int
    h: int
    w: int
    co: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    oh: int
    ow: int
    groups: int
    padded: bool  # a pad_temp block exists (it may be a plain copy when all pads are 0)

    @property
    def depthwise(self) -> bool:
        return self.groups == self.ci == self.co and self.groups > 1

    @property
    def pointwise(self) -> bool:
        return (self.kh, self.kw, self.sh, self.sw, self.pt, self.pl, self.groups) == (1, 1, 1, 1, 0, 0, 1)

    def workload(self, op: str, dtype: str, anchor: str) -> Workload:
        names = ("n", "ci", "h", "w", "co", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "oh", "ow", "groups")
        return Workload(op, tuple((k, getattr(self, k)) for k in names), dtype, anchor)


def _coeffs(expr, var_list) -> list[int] | None:
    found = detect_linear_equation(expr, var_list)
    if len(found) != len(var_list) + 1 or not all(isinstance(c, tvm.tirx.IntImm) for c in found):
        return None
    return [int(c) for c in found]


def conv_anchors(func: tvm.tirx.PrimFunc) -> list[str]:
    """Names of the conv blocks of ``func``, in program order."""
    sch = s_tir.Schedule(func)
    return [sch.get(b).name_hint for b in blocks_of(sch) if sch.get(b).name_hint.rstrip("0123456789") in CONV_ANCHORS]


def analyze_conv(func: tvm.tirx.PrimFunc, anchor_name: str | None = None) -> tuple[ConvGeometry, str, str] | None:
    """(geometry, anchor block name, dtype) of the conv in ``func``, or ``None``.

    Without ``anchor_name`` the function must hold exactly one conv (a merged group, see
    ``passes.merge_conv_groups``, is not a conv); with it, that block is analysed.
    """
    sch = s_tir.Schedule(func)
    if anchor_name is None:
        names = conv_anchors(func)
        if len(names) != 1:
            return None
        anchor_name = names[0]
    anchor = block_named(sch, (anchor_name,))
    if anchor is None or iter_kinds(sch, anchor) != "SSSSRRR":
        return None
    block = sch.get(anchor)
    n_, f_, y_, x_, rc_, ry_, rx_ = (iv.var for iv in block.iter_vars)
    n, co, oh, ow, rc, kh, kw = (int(iv.dom.extent) for iv in block.iter_vars)
    if len(block.reads) < 2 or len(block.writes) != 1:
        return None
    data = weight = None
    for region in block.reads:
        if len(region.region) != 4:
            continue
        mins = [r.min for r in region.region]
        if mins[0].same_as(f_) and mins[2].same_as(ry_):
            weight = region
        elif _coeffs(mins[2], [y_, ry_]) is not None:
            data = region
    if data is None or weight is None:
        return None
    hcoef = _coeffs(data.region[2].min, [y_, ry_])
    wcoef = _coeffs(data.region[3].min, [x_, rx_])
    if hcoef is None or wcoef is None:
        return None
    (sh, dh, _), (sw, dw, _) = hcoef, wcoef
    pt = pl = 0
    in_shape = [int(d) for d in data.source.shape]
    padded = False
    for other in blocks_of(sch):
        other_block = sch.get(other)
        if other_block.writes and other_block.writes[0].source.same_as(data.source):
            if len(other_block.reads) != 1 or len(other_block.iter_vars) != 4:
                return None
            src = other_block.reads[0]
            i2, i3 = other_block.iter_vars[2].var, other_block.iter_vars[3].var
            hoff, woff = _coeffs(src.region[2].min, [i2]), _coeffs(src.region[3].min, [i3])
            if hoff is None or woff is None or hoff[0] != 1 or woff[0] != 1:
                return None
            pt, pl = -hoff[1], -woff[1]
            in_shape = [int(d) for d in src.source.shape]
            padded = True
    ci = in_shape[1]
    if rc == 0 or ci % rc:
        return None
    geometry = ConvGeometry(
        n=n, ci=ci, h=in_shape[2], w=in_shape[3], co=co, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw,
        pt=pt, pl=pl, oh=oh, ow=ow, groups=ci // rc, padded=padded,
    )
    return geometry, block.name_hint, str(block.writes[0].source.dtype)
