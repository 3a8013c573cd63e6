"""Graph passes, in the order ``compiler.build`` runs them.

``graph_passes``: fold constants (the frontends leave ``reshape(const)`` around biases), rewrite
transposed convs as sub-pixel convs and a shuffle (``subpixel_conv_transpose``), fold explicit
zero pads into the convs reading them (``fold_pad_into_conv``), fold BatchNorm into convs
(``fold_batchnorm``), decompose the BatchNorms that follow no conv into
scale/shift ops, fold again. ``FuseEpilogue`` then lowers to TIR and fuses each conv with its
epilogue (``fuse_epilogue``).
"""

from __future__ import annotations

import tvm
from tvm import relax

from edgeprune.compiler.passes.fold_batchnorm import FoldBatchNorm
from edgeprune.compiler.passes.fold_pad_into_conv import FoldPadIntoConv
from edgeprune.compiler.passes.fuse_epilogue import FuseEpilogue
from edgeprune.compiler.passes.subpixel_conv_transpose import SubpixelConvTranspose


def graph_passes() -> tvm.transform.Pass:
    return tvm.transform.Sequential(
        [
            relax.transform.FoldConstant(),
            SubpixelConvTranspose,
            FoldPadIntoConv,
            FoldBatchNorm,
            relax.transform.DecomposeOpsForInference(),
            relax.transform.FoldConstant(),
            relax.transform.DeadCodeElimination(),
        ],
        name="EdgepruneGraphPasses",
    )


__all__ = ["FoldBatchNorm", "FoldPadIntoConv", "FuseEpilogue", "SubpixelConvTranspose", "graph_passes"]
