"""TFLite files made for tests with LiteRT's flatbuffer schema (object API)."""

from __future__ import annotations

import struct
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edgeprune.compiler.frontend.tflite_file import IDENTIFIER


def write_model(model: schema.ModelT, path: Path) -> Path:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    path.write_bytes(bytes(builder.Output()))
    return path


def read_model(path: Path) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)


def _tensor(name: str, shape: tuple[int, ...], buffer: int, dtype: int = schema.TensorType.FLOAT32) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.buffer, tensor.type = name.encode(), list(shape), buffer, dtype
    return tensor


def _buffer(data: bytes | None) -> schema.BufferT:
    buffer = schema.BufferT()
    buffer.data = list(data) if data is not None else None
    return buffer


def transpose_conv_bias(x_shape: tuple[int, int, int, int], out_channels: int, kernel: tuple[int, int],
                        strides: tuple[int, int], same: bool, seed: int = 0) -> schema.ModelT:
    """One MediaPipe ``Convolution2DTransposeBias`` on an NHWC input, random OHWI weights and bias."""
    rng = np.random.default_rng(seed)
    n, h, w, c = x_shape
    kh, kw = kernel
    sh, sw = strides
    weights = rng.standard_normal((out_channels, kh, kw, c)).astype(np.float32)
    bias = rng.standard_normal(out_channels).astype(np.float32)
    crop_h = max(0, kh - (h - 1) % sh - 1) if same else 0
    crop_w = max(0, kw - (w - 1) % sw - 1) if same else 0
    out_shape = (n, sh * (h - 1) + kh - crop_h, sw * (w - 1) + kw - crop_w, out_channels)
    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = b"Convolution2DTransposeBias"
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [_buffer(None), _buffer(None), _buffer(weights.tobytes()), _buffer(bias.tobytes()), _buffer(None)]
    graph = schema.SubGraphT()
    graph.tensors = [_tensor("input", x_shape, 1), _tensor("weights", weights.shape, 2), _tensor("bias", bias.shape, 3),
                     _tensor("output", out_shape, 4)]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.customOptions = list(struct.pack("<iii", 1 if same else 2, sw, sh))
    graph.operators, graph.inputs, graph.outputs, graph.name = [op], [0], [3], b"main"
    model.subgraphs = [graph]
    return model


def sparse_pointwise_conv(x_shape: tuple[int, int, int, int], out_channels: int, seed: int = 0) -> schema.ModelT:
    """A 1x1 CONV_2D whose float16 weights are stored in TFLite's sparse format (input channels
    compressed, CSR), read through DENSIFY and DEQUANTIZE as MediaPipe's pose detector does."""
    rng = np.random.default_rng(seed)
    n, h, w, c = x_shape
    dense = rng.standard_normal((out_channels, 1, 1, c)).astype(np.float16)
    dense[rng.random(dense.shape) < 0.5] = 0
    rows = dense.reshape(out_channels, c)
    segments, indices = [0], []
    for row in rows:
        indices += [int(i) for i in np.flatnonzero(row)]
        segments.append(len(indices))
    values = rows[rows != 0]
    bias = rng.standard_normal(out_channels).astype(np.float32)

    def dim(fmt: int, size: int = 0, segs=None, idx=None) -> schema.DimensionMetadataT:  # noqa: ANN001
        meta = schema.DimensionMetadataT()
        meta.format, meta.denseSize = fmt, size
        if segs is not None:
            meta.arraySegmentsType = meta.arrayIndicesType = schema.SparseIndexVector.Int32Vector
            meta.arraySegments, meta.arrayIndices = schema.Int32VectorT(), schema.Int32VectorT()
            meta.arraySegments.values, meta.arrayIndices.values = segs, idx
        return meta

    sparsity = schema.SparsityParametersT()
    sparsity.traversalOrder = [0, 1, 2, 3]
    sparsity.dimMetadata = [dim(schema.DimensionType.DENSE, out_channels), dim(schema.DimensionType.DENSE, 1),
                            dim(schema.DimensionType.DENSE, 1),
                            dim(schema.DimensionType.SPARSE_CSR, segs=segments, idx=indices)]
    model = schema.ModelT()
    model.version = 3
    codes = []
    for builtin in (schema.BuiltinOperator.DENSIFY, schema.BuiltinOperator.DEQUANTIZE, schema.BuiltinOperator.CONV_2D):
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
        codes.append(code)
    model.operatorCodes = codes
    model.buffers = [_buffer(None), _buffer(None), _buffer(values.tobytes()), _buffer(None), _buffer(None),
                     _buffer(bias.tobytes()), _buffer(None)]
    sparse = _tensor("weights_sparse", dense.shape, 2, schema.TensorType.FLOAT16)
    sparse.sparsity = sparsity
    graph = schema.SubGraphT()
    graph.tensors = [_tensor("input", x_shape, 1), sparse, _tensor("weights_fp16", dense.shape, 3, schema.TensorType.FLOAT16),
                     _tensor("weights", dense.shape, 4), _tensor("bias", bias.shape, 5),
                     _tensor("output", (n, h, w, out_channels), 6)]
    ops = []
    for index, inputs, outputs in ((0, [1], [2]), (1, [2], [3]), (2, [0, 3, 4], [5])):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        ops.append(op)
    options = schema.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = schema.Padding.VALID, 1, 1
    options.dilationWFactor = options.dilationHFactor = 1
    ops[2].builtinOptionsType, ops[2].builtinOptions = schema.BuiltinOptions.Conv2DOptions, options
    graph.operators, graph.inputs, graph.outputs, graph.name = ops, [0], [5], b"main"
    model.subgraphs = [graph]
    return model
