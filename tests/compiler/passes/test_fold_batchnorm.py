"""BatchNorm folding: every BN after a conv disappears into it, the rest become scale/shift."""

from __future__ import annotations

import numpy as np
import torch
import tvm
from torch import nn
from tvm import relax
from tvm.relax.frontend.torch import from_exported_program

from edgeprune.compiler.passes import graph_passes
from edgeprune.compiler.passes.structure import relax_ops
from tests.compiler.checkpoints import randomize_batchnorm


class ConvBNVariants(nn.Module):
    """Conv with bias + BN, grouped conv without bias + BN, and a BN that follows no conv."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=True)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.b3 = nn.BatchNorm2d(8)

    def forward(self, x):
        return self.b3(torch.relu(self.b2(self.c2(self.b1(self.c1(x))))))


def import_torch(model: nn.Module, x: torch.Tensor) -> tvm.IRModule:
    program = torch.export.export(model, (x,)).run_decompositions()
    return from_exported_program(program, unwrap_unit_return_tuple=True, run_ep_decomposition=False)


def run_default(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_batchnorm_folded_into_convs_and_numbers_kept():
    model = randomize_batchnorm(ConvBNVariants()).eval()
    x = torch.randn(1, 3, 9, 11)
    mod = import_torch(model, x)
    assert "relax.nn.batch_norm" in relax_ops(mod)
    folded = graph_passes()(mod)
    ops = relax_ops(folded)
    assert "relax.nn.batch_norm" not in ops
    # two convs remain; the standalone BN became one multiply and one add
    assert ops >= {"relax.nn.conv2d", "relax.multiply", "relax.add"}
    with torch.no_grad():
        expected = model.double()(x.double()).numpy()
    np.testing.assert_allclose(run_default(folded, x.numpy()), expected, atol=1e-5)


def test_unfoldable_batchnorm_is_kept_for_decomposition():
    """A training-mode BN (batch statistics) must not be folded with running statistics."""
    from edgeprune.compiler.passes.fold_batchnorm import FoldBatchNorm

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 2, 4, 4), "float32"))
    ones = relax.const(np.ones(2, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(np.ones((2, 2, 1, 1), "float32"))))
            bn = bb.emit(relax.op.nn.batch_norm(y, ones, ones, ones, ones, axis=1, training=True))
            out = bb.emit_output(relax.TupleGetItem(bn, 0))
        bb.emit_func_output(out)
    assert "relax.nn.batch_norm" in relax_ops(FoldBatchNorm(bb.get()))
