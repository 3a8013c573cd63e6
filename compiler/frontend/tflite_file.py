"""A TFLite file: TVM's Relax TFLite frontend (with ``tflite_ops``), then NHWC to NCHW.

The file's input and outputs keep their declared layout (NHWC for images): ``meta.json`` says
so and ``run`` takes what the file takes. Inside, the graph is converted to NCHW
(``passes.nhwc_to_nchw``) so the same graph passes and schedules as for ONNX apply. Float models
only; half-precision weights (a ``DEQUANTIZE`` from float16, as MediaPipe ships them, dense or
densified from TFLite's sparse format) are folded to float32 constants.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType
from tvm import relax
from tvm.relax.frontend.tflite import from_tflite

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.compiler.frontend.model import ImportedModel, TensorSpec, image_layout, outputs_of, sha256
from edgeprune.compiler.frontend.tflite_ops import CUSTOM_OPS, TFLiteConverter, custom_code
from edgeprune.compiler.passes.nhwc_to_nchw import NHWCToNCHW
from edgeprune.compiler.static_shapes import check_input_fits, check_static

# A TFLite flatbuffer carries this file identifier at bytes 4-8.
IDENTIFIER = b"TFL3"
SUFFIX = ".tflite"


def is_tflite(path: Path) -> bool:
    """Whether ``path`` is meant as a TFLite file: its identifier or its suffix."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head[4:8] == IDENTIFIER or path.suffix.lower() == SUFFIX


def import_tflite(path: Path, shape: tuple[int, ...] | None) -> ImportedModel:
    buf = path.read_bytes()
    model = _parse(buf, path)
    subgraph = model.Subgraphs(0)
    _check_operators(model, subgraph, path)
    _check_float(subgraph, path)
    if subgraph.InputsLength() != 1:
        raise EdgepruneError(f"{path}: expected one input tensor, found {subgraph.InputsLength()}")
    tensor = subgraph.Tensors(subgraph.Inputs(0))
    name = _name(tensor)
    if tensor.Type() != TensorType.FLOAT32:
        raise EdgepruneError(f"{path}: input {name!r} is {_type_name(tensor.Type())}, expected FLOAT32")
    declared = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    signature = [int(d) for d in tensor.ShapeSignatureAsNumpy()] if tensor.ShapeSignatureLength() else declared
    if shape is None:
        if not signature or min(signature) < 1:
            shown = [d if d > 0 else "?" for d in signature]
            raise EdgepruneError(f"{path}: input {name!r} has a dynamic shape {shown}; give the input shape "
                                 "(--input-shape 1,H,W,C)")
        shape = tuple(signature)
    elif len(shape) != len(signature):
        raise EdgepruneError(f"{path}: input {name!r} has rank {len(signature)}, input shape {list(shape)} has {len(shape)}")
    check_input_fits(shape, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = from_tflite(model, shape_dict={name: shape}, op_converter=TFLiteConverter)
    except Exception as exc:  # noqa: BLE001 - the frontend asserts on what it cannot convert
        raise EdgepruneError(f"{path}: TVM's TFLite frontend failed: {first_line(exc)}") from exc
    # the frontend also lists every weight in a "params" attribute: a second copy, unused
    mod["main"] = mod["main"].without_attr("params")
    mod = relax.transform.FoldConstant()(mod)
    mod = relax.transform.FoldConstant()(NHWCToNCHW(mod))
    check_static(mod, path)
    inputs = [TensorSpec(name, tuple(shape), "float32", image_layout(shape, "NHWC"))]
    output_names = [_name(subgraph.Tensors(subgraph.Outputs(i))) for i in range(subgraph.OutputsLength())]
    outputs = outputs_of(mod, output_names, path, "NHWC")
    return ImportedModel(mod, inputs, outputs, path, "tflite", sha256([path]))


def _parse(buf: bytes, path: Path) -> tflite.Model:
    if buf[4:8] != IDENTIFIER:
        raise EdgepruneError(f"{path}: not a TFLite model (no {IDENTIFIER.decode()} identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise EdgepruneError(f"{path}: not a TFLite model (no subgraph)")
        model.Subgraphs(0).OperatorsLength()
    except EdgepruneError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated flatbuffer fails anywhere
        raise EdgepruneError(f"{path}: not a TFLite model ({first_line(exc)})") from exc
    return model


def _name(tensor) -> str:  # noqa: ANN001
    return (tensor.Name() or b"").decode("utf-8", "replace")


def _type_name(code: int) -> str:
    return next((k for k, v in vars(TensorType).items() if v == code and not k.startswith("_")), str(code))


def _check_operators(model, subgraph, path: Path) -> None:  # noqa: ANN001
    """Name the first operator (by its output tensor) the frontend cannot convert."""
    builtin_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    supported = set(TFLiteConverter(model, subgraph, None, relax.BlockBuilder()).convert_map)
    for index in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(index)
        out = _name(subgraph.Tensors(op.Outputs(0))) if op.OutputsLength() else f"#{index}"
        custom = custom_code(model, op)
        if custom is not None:
            if custom not in CUSTOM_OPS and custom != "TFLite_Detection_PostProcess":
                raise EdgepruneError(f"{path}: custom operator {custom!r} (node {out!r}) is not supported; "
                                     f"edgeprune knows {', '.join(sorted(CUSTOM_OPS))}")
            continue
        code = model.OperatorCodes(op.OpcodeIndex())
        name = builtin_names.get(max(code.DeprecatedBuiltinCode(), code.BuiltinCode()), "?")
        if name not in supported:
            raise EdgepruneError(f"{path}: operator {name} (node {out!r}) is not supported by TVM's TFLite frontend")


def _check_float(subgraph, path: Path) -> None:  # noqa: ANN001
    """Refuse integer-quantized models (a tensor with a quantization scale and an integer type)."""
    integer = {TensorType.INT8, TensorType.UINT8, TensorType.INT16}
    for index in range(subgraph.TensorsLength()):
        tensor = subgraph.Tensors(index)
        quant = tensor.Quantization()
        if tensor.Type() in integer and quant is not None and quant.ScaleLength() > 0:
            raise EdgepruneError(f"{path}: a quantized model ({_type_name(tensor.Type())} tensor {_name(tensor)!r}); "
                                 "edgeprune compiles float models only")

