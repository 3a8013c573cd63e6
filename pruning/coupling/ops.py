"""Module kinds and the op tables: which ops keep a zero channel zero, which tie or mix channels.

Between mask points the zeros are followed along the graph: ReLU, ReLU6, hardswish, GELU,
dropout, pooling, interpolation, concat and reshapes that keep the channel axis keep a zero
channel zero; sigmoid, h_sigmoid, BatchNorm or adding a constant turn zero into nonzero. An
op found in none of these tables is taken to mix the channels: those it reads are not
prunable.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from edgeprune.pruning.coupling.fx_utils import arg, axis

# --------------------------------------------------------------------------- module kinds

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


def is_depthwise(module: nn.Module) -> bool:
    """One input channel per output channel, same width: the output channel *is* the input channel."""
    return (
        isinstance(module, _CONVS)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


def is_grouped(module: nn.Module) -> bool:
    return isinstance(module, _CONVS) and module.groups > 1 and not is_depthwise(module)


# --------------------------------------------------------------------------- op tables

# Channel-wise ops that map 0 to 0: a masked channel stays zero through them.
_ZERO_KEEPING_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.CELU,
    nn.SELU, nn.Tanh, nn.Softsign, nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d, nn.Upsample,
    nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d,
    nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d,
)  # fmt: skip
# Channel-wise ops that may turn a zero channel nonzero.
_ZERO_BREAKING_MODULES = (nn.Sigmoid, nn.Hardsigmoid, nn.Softplus, nn.LogSigmoid)

_ZERO_KEEPING_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.hardswish, F.gelu, F.silu,
    F.mish, F.elu, F.celu, F.selu, torch.tanh, F.tanh, F.softsign, F.dropout, F.dropout1d,
    F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, F.max_pool1d,
    F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.adaptive_max_pool3d, F.lp_pool1d, F.lp_pool2d, F.interpolate, F.upsample,
    F.upsample_bilinear, F.upsample_nearest, torch.abs, torch.neg, operator.neg, torch.clone,
}  # fmt: skip
ZERO_BREAKING_FUNCTIONS = {torch.sigmoid, F.sigmoid, F.hardsigmoid, F.softplus, F.logsigmoid, torch.exp}
_ZERO_KEEPING_METHODS = {
    "relu", "relu_", "contiguous", "clone", "detach", "float", "half", "double", "to", "type_as",
    "abs", "neg", "tanh", "cpu", "cuda",
}  # fmt: skip
ZERO_BREAKING_METHODS = {"sigmoid", "sigmoid_", "exp"}

ADD = {operator.add, operator.iadd, torch.add, "add", "add_", operator.sub, operator.isub, torch.sub, "sub", "sub_"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_"}
CAT = {torch.cat, torch.concat, torch.concatenate}
SPLIT = {torch.split, "split", torch.chunk, "chunk"}
RESHAPE = {
    torch.reshape, "reshape", "view", torch.flatten, "flatten", torch.squeeze, "squeeze",
    torch.unsqueeze, "unsqueeze", "view_as", "reshape_as", "expand", "expand_as",
}  # fmt: skip
PERMUTE = {torch.permute, "permute", torch.transpose, "transpose"}
REDUCE = {torch.mean, "mean", torch.sum, "sum", torch.amax, "amax"}
SOFTMAX = {F.softmax, torch.softmax, "softmax"}


# --------------------------------------------------------------------------- zero-keeping predicates


def keeps_zero(module: nn.Module) -> bool:
    """Channel-wise and ``f(0) = 0``."""
    if isinstance(module, nn.Hardtanh):  # includes ReLU6
        return module.min_val <= 0 <= module.max_val
    if isinstance(module, nn.ConstantPad1d | nn.ConstantPad2d | nn.ConstantPad3d):
        return module.value == 0
    return isinstance(module, _ZERO_KEEPING_MODULES)


def breaks_zero(module: nn.Module, channel_dim: int, rank: int) -> bool:
    """Channel-wise but not zero-keeping; a softmax over the channels mixes them instead."""
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return module.dim is not None and axis(module.dim, rank) != channel_dim
    return isinstance(module, _ZERO_BREAKING_MODULES)


def zero_keeping_call(node: fx.Node) -> bool:
    """A function or method call that is channel-wise with ``f(0) = 0`` (clamps and pads checked)."""
    target = node.target
    if target in (F.hardtanh, torch.clamp, "clamp", "clamp_min"):
        low = arg(node, 1, "min_val" if target is F.hardtanh else "min", -1.0 if target is F.hardtanh else None)
        high = arg(node, 2, "max_val" if target is F.hardtanh else "max", 1.0 if target is F.hardtanh else None)
        return (low is None or low <= 0) and (high is None or high >= 0)
    if target is F.pad:
        return arg(node, 2, "mode", "constant") != "constant" or not arg(node, 3, "value", None)
    return target in _ZERO_KEEPING_FUNCTIONS or target in _ZERO_KEEPING_METHODS


def out_width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def in_width(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels
