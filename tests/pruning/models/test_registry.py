import json
import sys

import pytest
import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.models import MODELS, build_model, model_spec

USER = "tests.pruning.models.user_model"


def test_the_five_built_in_models_are_registered():
    assert list(MODELS) == [
        "topformer-tiny",
        "topformer-small",
        "topformer-base",
        "topformer-supernet",
        "deeplabv3plus-mbv2",
    ]
    for name, spec in MODELS.items():
        assert spec.name == name and model_spec(name) is spec
        assert spec.published is not None and spec.published.input_hw == spec.input_hw
        assert spec.published.num_classes == spec.num_classes
    assert MODELS["deeplabv3plus-mbv2"].input_hw == (512, 1024) and MODELS["deeplabv3plus-mbv2"].num_classes == 19
    assert MODELS["topformer-base"].input_hw == (512, 512) and MODELS["topformer-base"].num_classes == 150


@pytest.mark.parametrize(("name", "stride"), [("topformer-tiny", 8), ("deeplabv3plus-mbv2", 4)])
def test_build_model_defaults_and_overrides_num_classes(name, stride):
    default = build_model(name)
    assert default.edgeprune_config["num_classes"] == MODELS[name].num_classes
    model = build_model(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64 // stride, 64 // stride)
    config = json.loads(json.dumps(model.edgeprune_config))
    assert config["model"] == name and config["num_classes"] == 3


def test_user_model_gets_num_classes_when_it_accepts_it():
    model = build_model(f"{USER}:build", num_classes=6)
    assert model.out_channels == 6
    assert model.edgeprune_config == {"model": f"{USER}:build", "num_classes": 6}
    assert build_model(f"{USER}:build").out_channels == 4
    assert model_spec(f"{USER}:build") is None


def test_user_model_without_num_classes_is_called_without_arguments():
    assert build_model(f"{USER}:build_fixed", num_classes=6).out_channels == 2


def test_user_module_is_found_in_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "edgeprune_cwd_model.py").write_text(
        "from torch import nn\ndef make(num_classes):\n    return nn.Conv2d(3, num_classes, 1)\n"
    )
    monkeypatch.chdir(tmp_path)
    try:
        assert isinstance(build_model("edgeprune_cwd_model:make", num_classes=2), nn.Conv2d)
    finally:
        sys.modules.pop("edgeprune_cwd_model", None)
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("topformer-huge", "unknown model 'topformer-huge': use one of topformer-tiny, topformer-small"),
        ("no_such_package.models:build", "cannot import 'no_such_package.models': ModuleNotFoundError"),
        (f"{USER}:missing", f"module '{USER}' has no attribute 'missing'"),
        (f"{USER}:NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
        (f"{USER}:not_a_module", "returned int, not a torch.nn.Module"),
        (f"{USER}:", "expected package.module:function"),
        (":build", "expected package.module:function"),
    ],
)
def test_bad_names_raise_a_one_line_edgeprune_error(spec, message):
    with pytest.raises(EdgepruneError) as info:
        build_model(spec)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_module_failing_on_import_is_reported(tmp_path, monkeypatch):
    (tmp_path / "edgeprune_broken_model.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EdgepruneError, match="cannot import 'edgeprune_broken_model': RuntimeError: boom"):
        build_model("edgeprune_broken_model:build")
