"""An ONNX file: made static and simplified with onnxsim, then TVM's ONNX frontend. Exporters
have usually folded BatchNorm already; 4-d inputs and outputs are NCHW, ONNX's convention."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from tvm import relax

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.compiler.frontend.model import ImportedModel, TensorSpec, image_layout, outputs_of, sha256
from edgeprune.compiler.static_shapes import check_input_fits, check_static


def import_onnx(path: Path, shape: tuple[int, ...] | None) -> ImportedModel:
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
        raise EdgepruneError(
            f"{path}: input {graph_input.name!r} has rank {len(file_dims)}, input shape {list(shape)} has {len(shape)}")
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
    inputs = [TensorSpec(graph_input.name, tuple(shape), "float32", image_layout(shape, "NCHW"))]
    outputs = outputs_of(mod, [o.name for o in model.graph.output], path)
    return ImportedModel(mod, inputs, outputs, path, "onnx", sha256([path]))


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
