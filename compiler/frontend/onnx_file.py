"""Import a model into a Relax IRModule with static shapes and its weights as constants.

Two sources: a checkpoint directory (the model rebuilt from ``arch.json`` + ``model.pt``,
captured with ``torch.export`` and translated by TVM's exported-program frontend) and an ONNX
file (made static and simplified with onnxsim, then TVM's ONNX frontend). Both give the same
numbers; the checkpoint path keeps BatchNorm as ops (the passes fold it), the ONNX exporter
has usually folded it already.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tvm
from tvm import relax

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.compiler.static_shapes import check_input_fits, check_static
from edgeprune.pruning.checkpoint import ARCH_FILE, MODEL_FILE, load_checkpoint

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, obj: dict) -> "TensorSpec":
        return cls(obj["name"], tuple(obj["shape"]), obj["dtype"])


@dataclass
class ImportedModel:
    """A Relax module whose ``main`` takes the inputs positionally and returns the outputs."""

    mod: tvm.IRModule
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: Path
    source_kind: str  # "checkpoint" or "onnx"
    source_sha256: str


def import_model(src: str | Path, input_shape: Sequence[int] | None = None) -> ImportedModel:
    """Import a checkpoint directory or an ONNX file; ``input_shape`` overrides the stored one."""
    path = Path(src)
    shape = _check_shape(input_shape, path) if input_shape is not None else None
    if path.is_dir():
        return _import_checkpoint(path, shape)
    if path.is_file():
        return _import_onnx(path, shape)
    raise EdgepruneError(f"{path}: no such file or checkpoint directory")


def _check_shape(shape: Sequence[int], path: Path) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4 or min(dims) <= 0:
        raise EdgepruneError(f"{path}: input shape must be 4 positive integers N,C,H,W, got {list(shape)}")
    return dims


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _outputs_of(mod: tvm.IRModule, names: Sequence[str], path: Path) -> list[TensorSpec]:
    """Output specs from the return type of ``main`` (a tensor or a tuple of tensors)."""
    ret = mod["main"].ret_ty
    fields = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    specs = []
    for i, ty in enumerate(fields):
        if not isinstance(ty, relax.TensorType) or ty.shape is None:
            raise EdgepruneError(f"{path}: output {i} is not a tensor of known shape")
        dims = []
        for d in ty.shape.values:
            if not isinstance(d, tvm.tirx.IntImm):
                raise EdgepruneError(f"{path}: output {i} has a dynamic shape {ty.shape}; give a static input shape")
            dims.append(int(d))
        name = names[i] if i < len(names) else f"output{i}"
        specs.append(TensorSpec(name, tuple(dims), str(ty.dtype)))
    return specs


# --- checkpoint directory -------------------------------------------------------------------

def _import_checkpoint(root: Path, shape: tuple[int, ...] | None) -> ImportedModel:
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
    inputs = [TensorSpec(INPUT_NAME, shape, "float32")]
    outputs = _outputs_of(mod, [OUTPUT_NAME], root)
    digest = _sha256([root / ARCH_FILE, root / MODEL_FILE])
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


# --- ONNX file -------------------------------------------------------------------------------

def _import_onnx(path: Path, shape: tuple[int, ...] | None) -> ImportedModel:
    import onnx

    model = _load_onnx(path)
    _check_onnx_ops(model, path)
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        raise EdgepruneError(f"{path}: expected one input tensor, found {len(graph_inputs)}")
    (graph_input,) = graph_inputs
    elem = graph_input.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise EdgepruneError(
            f"{path}: input {graph_input.name!r} is {onnx.TensorProto.DataType.Name(elem)}, expected FLOAT"
        )
    file_dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in graph_input.type.tensor_type.shape.dim]
    if shape is None:
        if None in file_dims or not file_dims:
            shown = [d if d is not None else "?" for d in file_dims]
            raise EdgepruneError(
                f"{path}: input {graph_input.name!r} has a dynamic shape {shown}; give the input shape (--input-shape 1,3,H,W)"
            )
        shape = tuple(file_dims)
    elif len(file_dims) != len(shape):
        raise EdgepruneError(f"{path}: input {graph_input.name!r} has rank {len(file_dims)}, input shape {list(shape)} has {len(shape)}")
    check_input_fits(shape, path)
    model = _simplify(model, graph_input.name, shape, path)
    try:
        from tvm.relax.frontend.onnx import from_onnx

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            mod = from_onnx(model, shape_dict={graph_input.name: list(shape)}, keep_params_in_input=False)
    except Exception as exc:  # noqa: BLE001
        raise EdgepruneError(f"{path}: TVM's ONNX frontend failed: {first_line(exc)}") from exc
    mod = relax.transform.FoldConstant()(mod)
    check_static(mod, path)
    inputs = [TensorSpec(graph_input.name, tuple(shape), "float32")]
    outputs = _outputs_of(mod, [o.name for o in model.graph.output], path)
    return ImportedModel(mod, inputs, outputs, path, "onnx", _sha256([path]))


def _load_onnx(path: Path):
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted errors on garbage
        raise EdgepruneError(f"{path}: not an ONNX model ({first_line(exc)})") from exc
    if not model.graph.node or not model.graph.input or not model.opset_import:
        raise EdgepruneError(f"{path}: not an ONNX model (no graph, inputs or opset)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise EdgepruneError(f"{path}: invalid ONNX model: {first_line(exc)}") from exc
    return model


def _check_onnx_ops(model, path: Path) -> None:
    """Name the first operator (and its node) that TVM's ONNX frontend has no converter for."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    supported = set(_get_convert_map()) | {"Constant", "If"}
    for index, node in enumerate(model.graph.node):
        if node.op_type not in supported or node.domain not in ("", "ai.onnx"):
            op = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
            name = node.name or f"#{index}"
            raise EdgepruneError(f"{path}: operator {op} (node {name!r}) is not supported by TVM's ONNX frontend")


def _simplify(model, input_name: str, shape: tuple[int, ...], path: Path):
    """Fix the input shape and fold shape arithmetic into constants (onnxsim)."""
    import onnxsim

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            simplified, ok = onnxsim.simplify(model, overwrite_input_shapes={input_name: list(shape)})
    except Exception as exc:  # noqa: BLE001
        raise EdgepruneError(f"{path}: onnxsim failed at input shape {list(shape)}: {first_line(exc)}") from exc
    if not ok:
        raise EdgepruneError(f"{path}: onnxsim could not validate the model simplified at input shape {list(shape)}")
    return simplified
