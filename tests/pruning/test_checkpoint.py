import json
import os
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.checkpoint import ArchInfo, layer_widths, load_checkpoint, read_arch, save_checkpoint
from edgeprune.pruning.models import build_model

SHAPE = [1, 3, 64, 64]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("topformer-tiny", num_classes=5).eval()
    arch = ArchInfo(model="topformer-tiny", num_classes=5, input_shape=SHAPE, mean=[0.5] * 3, std=[0.25] * 3)
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(out, model, arch, {"miou": 0.5})
    return out, model


def test_round_trip_computes_the_same(saved):
    out, model = saved
    x = torch.randn(*SHAPE)
    loaded = load_checkpoint(out)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.report == {"miou": 0.5}
    assert loaded.arch.widths == layer_widths(model)
    assert sorted(p.name for p in out.iterdir()) == ["arch.json", "model.onnx", "model.pt", "report.json"]


def test_onnx_file_matches_pytorch(saved):
    out, model = saved
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape == SHAPE and inp.type == "tensor(float)"
    assert session.get_outputs()[0].name == "logits"
    x = torch.randn(*SHAPE)
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)


def test_truncated_weights_are_named(saved, tmp_path):
    out, _ = saved
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("arch.json", "report.json"):
        (bad / name).write_bytes((out / name).read_bytes())
    data = (out / "model.pt").read_bytes()
    (bad / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgepruneError, match=r"model\.pt: cannot be read"):
        load_checkpoint(bad)


def test_shape_mismatch_names_the_tensor(saved, tmp_path):
    out, _ = saved
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.pt").write_bytes((out / "model.pt").read_bytes())
    arch = json.loads((out / "arch.json").read_text())
    arch["num_classes"] = 7
    (bad / "arch.json").write_text(json.dumps(arch))
    with pytest.raises(EdgepruneError, match=r"does not match arch\.json .*shape \(5, .*\(7, "):
        load_checkpoint(bad)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.update(format="other"), "not an edgeprune arch.json"),
        (lambda a: a.update(format_version=99), "format_version 99"),
        (lambda a: a.pop("num_classes"), "missing field"),
        (lambda a: a.update(input_shape=[1, 3, 64]), "input_shape must be"),
    ],
)
def test_bad_arch_json(saved, tmp_path, edit, message):
    out, _ = saved
    arch = json.loads((out / "arch.json").read_text())
    edit(arch)
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    with pytest.raises(EdgepruneError, match=message):
        read_arch(tmp_path)


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(EdgepruneError, match="no such checkpoint directory"):
        read_arch(tmp_path / "nope")
    with pytest.raises(EdgepruneError, match="arch.json: missing"):
        read_arch(tmp_path)


class RunsCode:
    """A pickled object whose loading would run a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_without_torchs_advice_to_run_it(saved, tmp_path):
    out, _ = saved
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    torch.save({"weight": torch.zeros(1), "payload": RunsCode(tmp_path / "ran")}, bad / "model.pt")
    with pytest.raises(EdgepruneError, match="holds Python objects besides tensors") as caught:
        load_checkpoint(bad)
    assert "weights_only=False" not in str(caught.value) and not (tmp_path / "ran").exists()


def test_an_unknown_model_name_points_at_arch_json(saved, tmp_path):
    out, _ = saved
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    arch = json.loads((bad / "arch.json").read_text())
    (bad / "arch.json").write_text(json.dumps({**arch, "model": "segformer-b9"}))
    with pytest.raises(EdgepruneError, match=r"arch\.json: unknown model 'segformer-b9'"):
        load_checkpoint(bad)
