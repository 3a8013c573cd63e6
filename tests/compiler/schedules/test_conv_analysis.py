"""Conv geometry read back from LegalizeOps' TIR."""

from edgeprune.compiler.schedules.conv_analysis import analyze_conv
from tests.compiler.schedules.cases import conv, prim_func


def test_strided_dilated_grouped_geometry():
    geometry, anchor, dtype = analyze_conv(prim_func(conv(8, 12, 3, stride=2, dilation=2, groups=4), (1, 8, 17, 14)))
    assert anchor == "group_conv2d_nchw" and dtype == "float32"
    assert (geometry.ci, geometry.h, geometry.w, geometry.co) == (8, 17, 14, 12)
    assert (geometry.kh, geometry.kw, geometry.sh, geometry.sw, geometry.dh, geometry.dw) == (3, 3, 2, 2, 2, 2)
    assert (geometry.pt, geometry.pl, geometry.oh, geometry.ow, geometry.groups) == (2, 2, 9, 7, 4)
    assert not geometry.depthwise and not geometry.pointwise


def test_pointwise_and_depthwise_flags():
    pointwise, _, _ = analyze_conv(prim_func(conv(8, 4, 1), (1, 8, 5, 5)))
    depthwise, _, _ = analyze_conv(prim_func(conv(6, 6, 5, groups=6), (1, 6, 9, 9)))
    assert pointwise.pointwise and depthwise.depthwise


def test_not_a_conv():
    from tvm import relax

    assert analyze_conv(prim_func(lambda x: relax.op.nn.relu(x), (1, 3, 4, 4))) is None
