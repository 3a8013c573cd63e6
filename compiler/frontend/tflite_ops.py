"""TFLite operators TVM 0.27's frontend lacks or converts poorly, registered in one place.

``CUSTOM_OPS`` maps a custom operator's code (the string a TFLite file names it by) to its
converter, which takes the ``TFLiteConverter`` and the flatbuffer operator and returns the
Relax expression of its (single) output, in the file's NHWC layout. ``TFLiteConverter`` is
TVM's operator converter with those ops added, PReLU converted per channel, and densified
(sparse-format) weights read where a DEQUANTIZE takes them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from tflite.BuiltinOperator import BuiltinOperator
from tvm import relax
from tvm.relax.frontend.tflite import tflite_frontend

CustomConverter = Callable[["TFLiteConverter", object], relax.Expr]
CUSTOM_OPS: dict[str, CustomConverter] = {}

# TfLitePadding, the first field of the params struct MediaPipe stores as custom options
PADDING_SAME = 1


def custom_op(code: str) -> Callable[[CustomConverter], CustomConverter]:
    def register(fn: CustomConverter) -> CustomConverter:
        CUSTOM_OPS[code] = fn
        return fn
    return register


def custom_code(model, op) -> str | None:  # noqa: ANN001 - flatbuffer objects
    """The custom code of ``op``, None for a builtin operator."""
    code = model.OperatorCodes(op.OpcodeIndex())
    if max(code.DeprecatedBuiltinCode(), code.BuiltinCode()) != BuiltinOperator.CUSTOM:
        return None
    return (code.CustomCode() or b"").decode("utf-8", "replace")


@custom_op("Convolution2DTransposeBias")
def convolution_2d_transpose_bias(conv: "TFLiteConverter", op) -> relax.Expr:  # noqa: ANN001
    """MediaPipe's transposed conv with a bias (its selfie and hair segmenters' upsampling).

    Inputs: data (NHWC), weights (OHWI), bias (O). The custom options are the raw
    ``TfLiteTransposeConvParams`` struct: padding, stride_width, stride_height (int32 each).
    SAME padding crops ``max(0, k - (in - 1) % s - 1)`` output rows, the smaller half first, so
    the output is ``s * (in - 1) + k - crop`` (MediaPipe's ``transpose_conv_bias.cc``).
    """
    data, weights, bias = conv.get_input_tensors(op)
    options = op.CustomOptionsAsNumpy().tobytes()
    if len(options) < 12:
        raise ValueError(f"Convolution2DTransposeBias: custom options of {len(options)} bytes, expected 12")
    padding, stride_w, stride_h = struct.unpack("<iii", options[:12])
    _, kh, kw, _ = tflite_frontend.to_int_list(conv.get_tensor_shape(weights))
    _, ih, iw, _ = tflite_frontend.to_int_list(conv.get_tensor_shape(data))
    crop_h = max(0, kh - (ih - 1) % stride_h - 1) if padding == PADDING_SAME else 0
    crop_w = max(0, kw - (iw - 1) % stride_w - 1) if padding == PADDING_SAME else 0
    out = relax.op.nn.conv2d_transpose(
        conv.get_tensor_expr(data), conv.get_tensor_expr(weights), strides=(stride_h, stride_w),
        padding=(crop_h // 2, crop_w // 2, crop_h - crop_h // 2, crop_w - crop_w // 2),
        data_layout="NHWC", kernel_layout="OHWI",
    )
    return relax.op.add(out, conv.get_tensor_expr(bias))


class TFLiteConverter(tflite_frontend.OperatorConverter):
    """TVM's TFLite operator converter with ``CUSTOM_OPS`` and a per-channel PReLU."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - TVM's signature
        super().__init__(*args, **kwargs)
        for code, fn in CUSTOM_OPS.items():
            self.convert_map[code] = lambda op, fn=fn: fn(self, op)

    def get_op_code_str(self, op) -> str:  # noqa: ANN001
        code = custom_code(self.model, op)
        if code in CUSTOM_OPS:
            return code
        return super().get_op_code_str(op)

    def get_tensor_value(self, tensor_wrapper, is_sparse: bool = False):  # noqa: ANN001, ANN201 - TVM's types
        """A constant's value. MediaPipe's pose and full-range face detectors keep float16 weights
        in TFLite's sparse format, densified by a DENSIFY op that a DEQUANTIZE reads: TVM's
        converter keeps the DENSIFY result aside ("prefetched"), but its DEQUANTIZE read the
        (empty) buffer of that tensor instead."""
        if self.is_prefetched(tensor_wrapper.tensor_idx):
            return self.get_prefetched_node(tensor_wrapper.tensor_idx)
        return super().get_tensor_value(tensor_wrapper, is_sparse)

    def convert_prelu(self, op) -> relax.Expr:  # noqa: ANN001
        """PReLU with one slope per channel (BlazeFace, BlazePalm) as ``nn.prelu`` on the channel
        axis. TVM's converter broadcasts the slopes to the whole map and flattens both, which
        hides the channel axis from layout conversion and makes the slopes a map-sized constant."""
        data, alpha = self.get_input_tensors(op)
        shape = tflite_frontend.to_int_list(self.get_tensor_shape(data))
        alpha_shape = tflite_frontend.to_int_list(self.get_tensor_shape(alpha))
        if not alpha_shape or alpha_shape[-1] != shape[-1] or any(d != 1 for d in alpha_shape[:-1]):
            return super().convert_prelu(op)
        slopes = relax.op.reshape(self.get_tensor_expr(alpha), [shape[-1]])
        return relax.op.nn.prelu(self.get_tensor_expr(data), slopes, axis=len(shape) - 1)
