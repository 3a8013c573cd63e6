import pytest
import torch
from torch import nn

from edgeprune.pruning.models import topformer
from edgeprune.pruning.models.topformer import BASE, SMALL, SUPERNET, TINY, TopFormer

from .checks import (
    assert_export_matches_eager,
    assert_fx_matches_eager,
    assert_onnx_matches,
    assert_trains,
    param_count_m,
)

# Published (TopFormer paper / official README; the pruning paper for the supernet), 150 classes.
PUBLISHED_PARAMS_M = [(TINY, 1.4), (SMALL, 3.1), (BASE, 5.1), (SUPERNET, 10.3)]


@pytest.fixture
def tiny() -> TopFormer:
    torch.manual_seed(0)
    return topformer.topformer(TINY)


@pytest.mark.parametrize(("config", "published"), PUBLISHED_PARAMS_M)
def test_parameter_count_is_within_10_percent_of_published(config, published):
    assert param_count_m(topformer.topformer(config)) == pytest.approx(published, rel=0.1)


def test_published_configs_follow_the_official_model_cfgs():
    assert [c for _, _, c, _ in TINY.blocks] == [16, 16, 16, 32, 32, 64, 64, 96, 96]
    assert (TINY.level_channels, TINY.num_heads, TINY.head_channels) == ((16, 32, 64, 96), 4, 128)
    assert (SMALL.level_channels, SMALL.num_heads, SMALL.head_channels) == ((24, 48, 96, 128), 6, 192)
    assert (BASE.level_channels, BASE.num_heads, BASE.head_channels) == ((32, 64, 128, 160), 8, 256)
    assert TINY.head_depthwise and not SMALL.head_depthwise and not BASE.head_depthwise


def test_supernet_is_at_least_as_wide_as_base_everywhere():
    for (_, t_sup, c_sup, s_sup), (_, t_base, c_base, s_base) in zip(SUPERNET.blocks, BASE.blocks, strict=True):
        assert s_sup == s_base and c_sup >= c_base and t_sup >= t_base
    assert SUPERNET.head_channels > BASE.head_channels and sum(SUPERNET.level_channels) > sum(BASE.level_channels)


@pytest.mark.parametrize(("hw", "out_hw"), [((64, 64), (8, 8)), ((128, 96), (16, 12)), ((100, 140), (13, 18))])
def test_logits_come_out_at_one_eighth_of_the_input(tiny, hw, out_hw):
    with torch.no_grad():
        assert tiny.eval()(torch.randn(2, 3, *hw)).shape == (2, 150, *out_hw)


def test_pyramid_levels_and_token_grid(tiny):
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        levels = tiny.tpm(x)
        tokens = tiny.ppa(levels)
    assert [tuple(t.shape[1:]) for t in levels] == [(16, 64, 64), (32, 32, 32), (64, 16, 16), (96, 8, 8)]
    assert tokens.shape == (1, 16 + 32 + 64 + 96, 4, 4)  # 1/64 of the input
    # Equal-size average pooling is exactly the official adaptive pooling at multiples of 64.
    want = torch.cat([nn.functional.adaptive_avg_pool2d(t, (4, 4)) for t in levels], dim=1)
    torch.testing.assert_close(tokens, want)


def test_attention_uses_the_configured_heads(tiny):
    attn = tiny.trans[0].attn
    assert len(tiny.trans) == 4
    assert attn.to_q[0].out_channels == attn.to_k[0].out_channels == 16 * 4
    assert attn.to_v[0].out_channels == 32 * 4


def test_num_classes_and_config_are_recorded():
    model = topformer.topformer(SMALL, num_classes=7)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 7, 8, 8)
    assert model.edgeprune_config["num_classes"] == 7
    assert model.edgeprune_config["num_heads"] == 6


def test_initialisation_is_for_training_from_scratch(tiny):
    for module in tiny.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
    stem = tiny.tpm.stem[0].weight
    assert stem.std().item() == pytest.approx((2 / (9 * 16)) ** 0.5, rel=0.25)


def test_fx_trace_matches_eager(tiny):
    assert_fx_matches_eager(tiny, torch.randn(1, 3, 128, 128))


def test_torch_export_matches_eager(tiny):
    assert_export_matches_eager(tiny, torch.randn(1, 3, 128, 128))


def test_onnx_runtime_matches_pytorch(tiny, tmp_path):
    # 128x128 gives a 2x2 token grid, so attention mixes tokens.
    assert_onnx_matches(tiny, torch.randn(1, 3, 128, 128), tmp_path / "tiny.onnx")


def test_training_step_reaches_every_parameter(tiny):
    # At least 2x2 tokens: with one token the softmax is constant and q, k get no gradient.
    assert_trains(tiny, torch.randn(2, 3, 128, 128), num_classes=150)
