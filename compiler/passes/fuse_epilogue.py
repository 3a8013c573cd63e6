"""Lower Relax ops to TIR and fuse every conv/matmul with its elementwise epilogue.

Once BatchNorm is folded, a Conv-BN-Act(-Add) block is ``conv2d -> add(bias) -> act
[-> add(residual)]``: ``FuseOps`` groups the conv (an out-elementwise-fusable anchor) with the
chain of elementwise/broadcast ops after it, ReLU6 as ``clip``, hardswish/h_sigmoid as their
``add``/``clip``/``divide``/``multiply`` decompositions included, and ``FuseTIR`` merges each
group into one PrimFunc whose anchor block (``conv2d_nchw``, ``group_conv2d_nchw``,
``matmul``...) the schedules look for. The epilogue blocks stay separate blocks in that
PrimFunc; the schedules inline them into the conv's output tile.

Bilinear resizes are legalized in two 1-D passes (``separable_resize``) instead of TOPI's
four-gather form; where a resized map feeds a conv's epilogue, the height pass joins that
epilogue. Softmax and sigmoid are legalized with a vectorisable exponential (``vector_softmax``,
``vector_sigmoid``). Convs whose
output rows would end in a ragged vector compute rows widened to whole vectors and crop them
in their kernel (``pad_conv_width``; CPU targets only). With ``merge_convs``, an inverted residual's expand
group and the depthwise group reading it become one PrimFunc (``fuse_expand_depthwise``), and
so do a depthwise group left alone and the pointwise group reading it
(``fuse_depthwise_pointwise``).
"""

from __future__ import annotations

import tvm
from tvm import relax

from edgeprune.compiler.passes.fuse_depthwise_pointwise import FuseDepthwisePointwise
from edgeprune.compiler.passes.fuse_expand_depthwise import FuseExpandDepthwise
from edgeprune.compiler.passes.pad_conv_width import padded_conv2d
from edgeprune.compiler.passes.separable_resize import separable_resize
from edgeprune.compiler.passes.vector_sigmoid import vector_sigmoid
from edgeprune.compiler.passes.vector_softmax import vector_softmax


def FuseEpilogue(merge_convs: bool = False) -> tvm.transform.Pass:  # noqa: N802 - pass naming
    return tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(
                customize_legalize_map={"relax.image.resize2d": separable_resize, "relax.nn.softmax": vector_softmax,
                                        "relax.sigmoid": vector_sigmoid,
                                        "relax.nn.conv2d": padded_conv2d}
            ),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),
            relax.transform.FuseOps(),
            *([FuseExpandDepthwise(), FuseDepthwisePointwise()] if merge_convs else []),
            relax.transform.FuseTIR(),
            relax.transform.DeadCodeElimination(),
        ],
        name="FuseEpilogue",
    )
