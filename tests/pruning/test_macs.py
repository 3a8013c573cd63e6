"""count_cost against hand-worked MACs and against torch.utils.flop_counter (reference_macs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.pruning.macs import LayerCost, count_cost, reference_macs


class TinyNet(nn.Module):
    """conv -> depthwise -> pointwise -> BN -> token self-attention -> linear, on 1x3x8x8."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.pw(self.dw(self.conv(x))).relu())
        tokens = x.flatten(2).transpose(1, 2)  # [1, 16 tokens, 16 channels]
        attn = torch.matmul(tokens, tokens.transpose(1, 2)).softmax(-1)
        return self.fc(attn @ tokens)


def test_tiny_net_by_hand():
    # conv : out 1x8x8x8 = 512 elements * (3 in * 3x3)          = 13824 MACs; 8*3*9 + 8 = 224 params
    # dw   : stride 2 -> 1x8x4x4 = 128 elements * (1 in * 3x3)   =  1152 MACs; 8*1*9 + 8 =  80 params
    # pw   : 1x16x4x4 = 256 elements * 8 in                      =  2048 MACs; 16*8      = 128 params
    # bn   : no MACs;                                                          2*16      =  32 params
    # tokens @ tokens^T : [1,16,16] = 256 elements * 16 channels =  4096 MACs
    # attn @ tokens     : [1,16,16] = 256 elements * 16 tokens   =  4096 MACs
    # fc   : [1,16,10] = 160 elements * 16 in                    =  2560 MACs; 10*16 + 10 = 170 params
    # total: 13824 + 1152 + 2048 + 4096 + 4096 + 2560 = 27776 MACs; 634 params
    model = TinyNet()
    cost = count_cost(model, (1, 3, 8, 8))
    assert [(layer.name, layer.kind, layer.macs) for layer in cost.layers] == [
        ("conv", "conv", 13824),
        ("dw", "dwconv", 1152),
        ("pw", "conv", 2048),
        ("<matmul #1 in module (root)>", "matmul", 4096),
        ("<matmul #2 in module (root)>", "matmul", 4096),
        ("fc", "linear", 2560),
    ]
    assert cost.macs == 27776
    assert cost.params == 634
    assert cost.by_kind() == {"conv": 15872, "dwconv": 1152, "matmul": 8192, "linear": 2560}
    assert cost.layers[1] == LayerCost("dw", "dwconv", 1152, 80, 8, 8, 8, (1, 8, 4, 4))
    assert cost.layers[5] == LayerCost("fc", "linear", 2560, 170, 16, 10, None, (1, 16, 10))
    assert reference_macs(model, (1, 3, 8, 8)) == 27776
    assert cost.gmacs == pytest.approx(27776e-9) and cost.params_m == pytest.approx(634e-6)
    assert cost.input_shape == (1, 3, 8, 8)


def test_strided_dilated_padded_conv_by_hand():
    # H: (13 + 2*1 - 2*(3-1) - 1) // 2 + 1 = 6; W: (17 + 2*2 - 1*(5-1) - 1) // 3 + 1 = 6
    # MACs = 2 batch * 7 out * 6 * 6 * (5 in * 3 * 5) = 37800
    conv = nn.Conv2d(5, 7, (3, 5), stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    cost = count_cost(conv, (2, 5, 13, 17))
    assert cost.layers[0].output_shape == (2, 7, 6, 6)
    assert cost.macs == 37800 == reference_macs(conv, (2, 5, 13, 17))


class Attention(nn.Module):
    """Multi-head attention written with every counted product form."""

    def __init__(self, dim: int = 12, heads: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        scores = torch.matmul(q.transpose(-2, -1), k)  # [b, heads, hw, hw]
        out = scores.softmax(-1) @ v.transpose(-2, -1)  # [b, heads, hw, d]
        flat = out.flatten(0, 1)
        out = out + torch.bmm(flat, flat.transpose(1, 2)).bmm(flat).view_as(out)
        out = out + torch.einsum("bhqd,bhkd->bhqk", out, out).matmul(out)
        out = out + torch.einsum("...qd,de->...qe", out, torch.ones(c // self.heads, c // self.heads))
        out = out + torch.einsum("ij,jk", flat[0], torch.ones(c // self.heads, 4)).sum()
        out = out + F.scaled_dot_product_attention(out, out, out)
        return self.proj(out.transpose(1, 2).reshape(b, h * w, c))


class Functional(nn.Module):
    """A conv and a linear done functionally, with this module's own tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 2, 3, 3))
        self.fc = nn.Parameter(torch.randn(5, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.conv2d(x, self.weight, stride=2, groups=2).mean((2, 3)), self.fc)


CASES = {
    "conv stack": (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                                 nn.Conv2d(16, 4, 1)), (2, 3, 16, 16)),
    "grouped conv": (nn.Conv2d(12, 18, 3, padding=1, groups=3), (1, 12, 9, 11)),
    "depthwise conv": (nn.Conv2d(8, 16, 5, padding=2, groups=8), (1, 8, 15, 7)),
    "odd strided dilated": (nn.Sequential(nn.Conv2d(3, 5, 3, stride=3, padding=2, dilation=3),
                                          nn.Conv2d(5, 6, (1, 3), stride=(2, 1), padding="valid"),
                                          nn.Conv2d(6, 6, 3, padding="same", padding_mode="reflect")),
                            (1, 3, 23, 19)),
    "transposed conv": (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (1, 4, 5, 7)),
    "conv1d": (nn.Conv1d(4, 6, 3, padding=1), (2, 4, 11)),
    "linear on 3D input": (nn.Linear(6, 4), (2, 5, 6)),
    "attention": (Attention(), (2, 12, 3, 5)),
    "functional": (Functional(), (1, 4, 9, 9)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_flop_counter(name):
    model, shape = CASES[name]
    cost = count_cost(model, shape)
    assert cost.macs > 0
    assert cost.macs == reference_macs(model, shape)
    assert cost.macs == sum(layer.macs for layer in cost.layers)
    assert cost.params == sum(p.numel() for p in model.parameters())


def test_layer_kinds_channels_and_names():
    depthwise = count_cost(CASES["depthwise conv"][0], (1, 8, 15, 7)).layers[0]
    assert (depthwise.kind, depthwise.in_channels, depthwise.out_channels, depthwise.groups) == ("dwconv", 8, 16, 8)
    grouped = count_cost(CASES["grouped conv"][0], (1, 12, 9, 11)).layers[0]
    assert (grouped.kind, grouped.groups, grouped.macs) == ("conv", 3, 18 * 9 * 11 * 4 * 9)
    transposed = count_cost(CASES["transposed conv"][0], (1, 4, 5, 7)).layers[0]
    # every one of the 4*5*7 input elements feeds 6/2 output channels * 3x3 taps
    assert (transposed.in_channels, transposed.out_channels, transposed.macs) == (4, 6, 140 * 3 * 9)
    assert transposed.output_shape == (1, 6, 10, 14)

    functional = count_cost(Functional(), (1, 4, 9, 9)).layers
    assert [(layer.name, layer.kind) for layer in functional] == [
        ("<conv #1 in module (root)>", "conv"), ("<linear #1 in module (root)>", "linear")]
    assert functional[0].params == 6 * 2 * 9

    attention = count_cost(nn.Sequential(Attention()), (1, 12, 3, 5)).layers
    matmuls = [layer.name for layer in attention if layer.kind == "matmul"]
    assert matmuls == [f"<matmul #{k} in module 0>" for k in range(1, 10)]
    # scaled_dot_product_attention: 1 batch * 3 heads * 15 queries * 15 keys * (4 + 4) = 5400
    assert attention[-2].macs == 5400 and attention[-2].output_shape == (1, 3, 15, 4)
    assert [layer.name for layer in attention if layer.kind != "matmul"] == ["0.qkv", "0.proj"]


def test_macs_scale_with_batch():
    model, _ = CASES["conv stack"]
    assert count_cost(model, (4, 3, 16, 16)).macs == 2 * count_cost(model, (2, 3, 16, 16)).macs


def test_three_operand_einsum_warns_and_is_skipped():
    class Chain(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("ij,jk,kl->il", x, x, x)

    with pytest.warns(UserWarning, match="two-operand einsum"):
        assert count_cost(Chain(), (3, 3)).macs == 0


class Explodes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.bn(self.conv(x))
        raise RuntimeError("boom")


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_state_is_restored_even_when_forward_raises():
    model = Explodes().train()
    model.bn.eval()  # a frozen BN inside a training model keeps its own flag
    with pytest.raises(RuntimeError, match="boom"):
        count_cost(model, (1, 3, 4, 4))
    assert model.training and model.conv.training and not model.bn.training
    assert _hooks(model) == 0
    assert torch.is_grad_enabled()
    assert not torch._C._is_torch_function_mode_enabled()


def test_runs_in_eval_without_grad_and_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).train()
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    stats = model[1].running_mean.clone()
    count_cost(model, (1, 3, 6, 6))
    reference_macs(model, (1, 3, 6, 6))
    assert seen == [(False, False), (False, False)]
    assert torch.equal(model[1].running_mean, stats)
    assert model.training and all(m.training for m in model)
    assert _hooks(model) == 1


@pytest.mark.parametrize("shape", [(), (1, 0, 4, 4), (1, 3, 4.0, 4)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="positive ints"):
        count_cost(nn.Conv2d(3, 3, 1), shape)


BUILT_IN = {
    "topformer-tiny": (1, 3, 128, 128),
    "topformer-small": (1, 3, 96, 96),
    "topformer-base": (1, 3, 96, 96),
    "topformer-supernet": (1, 3, 128, 128),
    "deeplabv3plus-mbv2": (1, 3, 64, 128),
}


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_built_in_models_agree_with_flop_counter(name):
    models = pytest.importorskip("edgeprune.pruning.models")
    model = models.build_model(name)
    cost = count_cost(model, BUILT_IN[name])
    assert cost.macs == reference_macs(model, BUILT_IN[name])
    assert cost.params == sum(p.numel() for p in model.parameters())
    kinds = cost.by_kind()
    assert kinds["conv"] > 0 and kinds["dwconv"] > 0
    assert ("matmul" in kinds) == name.startswith("topformer")
