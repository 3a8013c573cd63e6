import dataclasses

import pytest
import torch

from edgeprune.pruning.models import deeplabv3plus
from edgeprune.pruning.models.deeplabv3plus import DEFAULT, DeepLabV3Plus

from .checks import (
    assert_export_matches_eager,
    assert_fx_matches_eager,
    assert_onnx_matches,
    assert_trains,
    param_count_m,
)


@pytest.fixture
def model() -> DeepLabV3Plus:
    torch.manual_seed(0)
    return deeplabv3plus.deeplabv3plus()


def test_parameter_count_is_within_10_percent_of_published(model):
    assert param_count_m(model) == pytest.approx(2.26, rel=0.1)


def test_backbone_is_mobilenetv2_without_the_last_conv(model):
    assert param_count_m(model.backbone) == pytest.approx(1.81, abs=0.01)
    assert model.backbone.out_channels == 320


@pytest.mark.parametrize(("hw", "out_hw"), [((64, 64), (16, 16)), ((96, 160), (24, 40)), ((100, 140), (25, 35))])
def test_logits_come_out_at_one_quarter_of_the_input(model, hw, out_hw):
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, *hw)).shape == (2, 19, *out_hw)


@pytest.mark.parametrize("output_stride", [8, 16])
def test_features_strides(output_stride):
    model = deeplabv3plus.deeplabv3plus(dataclasses.replace(DEFAULT, output_stride=output_stride)).eval()
    with torch.no_grad():
        low, high = model.backbone(torch.randn(1, 3, 128, 128))
    assert low.shape == (1, 24, 32, 32)
    assert high.shape == (1, 320, 128 // output_stride, 128 // output_stride)
    dilations = [branch[0][0].dilation[0] for branch in list(model.aspp.branches)[1:-1]]
    assert dilations == [r * 16 // output_stride for r in (6, 12, 18)]


def test_decoder_projects_low_level_features_to_48_channels(model):
    assert model.decoder.low_level[0].out_channels == 48


def test_num_classes_and_config_are_recorded():
    model = deeplabv3plus.deeplabv3plus(num_classes=5)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 5, 16, 16)
    assert model.edgeprune_config["num_classes"] == 5
    assert model.edgeprune_config["aspp_channels"] == DEFAULT.aspp_channels


def test_fx_trace_matches_eager(model):
    assert_fx_matches_eager(model, torch.randn(1, 3, 128, 128))


def test_torch_export_matches_eager(model):
    assert_export_matches_eager(model, torch.randn(1, 3, 64, 64))


def test_onnx_runtime_matches_pytorch(model, tmp_path):
    assert_onnx_matches(model, torch.randn(1, 3, 128, 128), tmp_path / "deeplab.onnx")


def test_training_step_reaches_every_parameter(model):
    assert_trains(model, torch.randn(2, 3, 64, 64), num_classes=19)
