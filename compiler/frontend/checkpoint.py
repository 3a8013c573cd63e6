"""A checkpoint directory: the model rebuilt from ``arch.json`` + ``model.pt``, captured with
``torch.export`` and translated by TVM's exported-program frontend. BatchNorm stays as ops (the
graph passes fold it)."""

from __future__ import annotations

import warnings
from pathlib import Path

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.compiler.frontend.model import ImportedModel, TensorSpec, outputs_of, sha256
from edgeprune.compiler.static_shapes import check_input_fits, check_static
from edgeprune.pruning.checkpoint import ARCH_FILE, MODEL_FILE, load_checkpoint

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def import_checkpoint(root: Path, shape: tuple[int, ...] | None) -> ImportedModel:
    import torch
    from tvm.relax.frontend.torch import from_exported_program

    ckpt = load_checkpoint(root)
    shape = shape or tuple(ckpt.arch.input_shape)
    check_input_fits(shape, root)
    example = torch.zeros(shape, dtype=torch.float32)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Core ATen, as TVM's frontend would decompose it; checked below before translating.
            program = torch.export.export(ckpt.model, (example,)).run_decompositions()
    except Exception as exc:  # noqa: BLE001 - any export failure is about the user's model
        raise EdgepruneError(f"{root}: torch.export failed at input {list(shape)}: {first_line(exc)}") from exc
    _check_torch_ops(program, root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = from_exported_program(
                program, keep_params_as_input=False, unwrap_unit_return_tuple=True, run_ep_decomposition=False
            )
    except Exception as exc:  # noqa: BLE001
        raise EdgepruneError(f"{root}: TVM's PyTorch frontend failed: {first_line(exc)}") from exc
    check_static(mod, root)
    inputs = [TensorSpec(INPUT_NAME, shape, "float32", "NCHW")]
    outputs = outputs_of(mod, [OUTPUT_NAME], root)
    digest = sha256([root / ARCH_FILE, root / MODEL_FILE])
    return ImportedModel(mod, inputs, outputs, root, "checkpoint", digest)


def _check_torch_ops(program, root: Path) -> None:
    """Name the first ATen operator (and its node) that TVM's frontend cannot translate."""
    from tvm.relax.frontend.torch.exported_program_translator import ExportedProgramImporter

    supported = ExportedProgramImporter().create_convert_map()
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if name not in supported:
            stack = node.meta.get("nn_module_stack") or {}
            where = f" in module {list(stack.values())[-1][0]!r}" if stack else ""
            raise EdgepruneError(
                f"{root}: operator {name} (node {node.name!r}{where}) is not supported by TVM's PyTorch frontend"
            )


