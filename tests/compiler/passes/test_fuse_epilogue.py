"""Fusion structure: one kernel per conv (or per merged pair of convs), with bias,
activation and residual add inside it."""

from __future__ import annotations

import re

import pytest
from torch import nn

from edgeprune.compiler.build import fuse
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.passes.separable_resize import OUT_BLOCK
from edgeprune.compiler.passes.structure import block_names, conv_kernels, convs_in, kernel_calls, prim_funcs, relax_ops
from edgeprune.compiler.target import make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.pruning.checkpoint import load_checkpoint
from tests.compiler.checkpoints import make_checkpoint

TARGET = make_target(resolve_target("host"))
EPILOGUE_ONLY = ("add", "relu", "clip", "divide", "multiply")


def fused_module(ckpt):
    return fuse(import_model(ckpt), TARGET)


def check_structure(ckpt) -> dict[str, list[str]]:
    mod = fused_module(ckpt)
    assert "relax.nn.batch_norm" not in relax_ops(mod)
    kernels = conv_kernels(mod)
    calls = kernel_calls(mod)
    model = load_checkpoint(ckpt).model
    n_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert sum(convs_in(kernels.get(name, [])) for name in calls) == n_convs
    # inverted residuals on small maps or of few input channels run expand and depthwise as one kernel
    assert any(convs_in(blocks) == 2 for blocks in kernels.values())
    # no BN, bias, activation or residual add runs as a kernel of its own
    for name, func in prim_funcs(mod).items():
        if name not in kernels:
            assert not name.startswith(EPILOGUE_ONLY), name
    return kernels


def test_user_model_epilogues_fused(user_checkpoint):
    kernels = check_structure(user_checkpoint)
    # FuseTIR names a kernel after its ops: conv, bias add, then the epilogue; a merged
    # pair is named "<producer group>__<consumer group>"
    groups = [group for k in kernels for group in k.split("__")]
    assert any("multiply" in g and "tir_clip" in g for g in groups)  # hardswish / h_sigmoid gate
    assert any(re.fullmatch(r"fused_conv2d\d*_add\d*_tir_clip\d*", g) for g in groups)  # ReLU6
    assert any(re.fullmatch(r"fused_conv2d\d*_add\d*_relu\d*", g) for g in groups)  # ReLU
    assert any(re.fullmatch(r"fused_conv2d\d*_add\d*_add\d*", g) for g in groups)  # residual add


@pytest.mark.parametrize("model, shape", [("topformer-tiny", [1, 3, 128, 128]), ("deeplabv3plus-mbv2", [1, 3, 64, 128])])
def test_builtin_models_one_kernel_per_conv(tmp_path, model, shape):
    check_structure(make_checkpoint(tmp_path / "ckpt", model, shape))


def test_topformer_resizes_blend_rows_in_conv_epilogues(tmp_path):
    """Every resize of TopFormer's injection modules and head feeds a conv's epilogue: its height
    pass runs there, and no full-size resized map is written by a kernel of its own."""
    mod = fused_module(make_checkpoint(tmp_path / "ckpt", "topformer-tiny", [1, 3, 128, 128]))
    kernels = conv_kernels(mod)
    with_height_pass = [name for name, func in prim_funcs(mod).items()
                        if any(re.fullmatch(rf"{OUT_BLOCK}\d*", b) for b in block_names(func))]
    assert with_height_pass and set(with_height_pass) <= set(kernels), sorted(with_height_pass)
