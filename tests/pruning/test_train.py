import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning import train as train_module
from edgeprune.pruning.checkpoint import load_checkpoint
from edgeprune.pruning.train import BatchPlan, TrainConfig, poly_lr, train


def small_config(out, **overrides) -> TrainConfig:
    settings = dict(model="topformer-tiny", data="synthetic", out=out, iters=6, batch_size=2, crop_size=(64, 64),
                    input_size=(64, 64), checkpoint_interval=2, val_images=4, workers=0, progress_interval_s=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_poly_schedule():
    assert poly_lr(0.1, 0, 100, 0.9) == pytest.approx(0.1)
    assert poly_lr(0.1, 50, 100, 0.9) == pytest.approx(0.1 * 0.5 ** 0.9)
    assert poly_lr(0.1, 100, 100, 0.9) == 0.0


def test_batch_plan_splits_each_global_batch_between_ranks():
    plans = [BatchPlan(num_items=20, batch_size=3, world_size=2, rank=r, seed=1) for r in range(2)]
    steps = plans[0].steps_per_epoch
    assert steps == 3
    seen = []
    for it in range(steps):
        a, b = (p.items(it) for p in plans)
        assert len(a) == len(b) == 3 and not set(a) & set(b)
        seen += a + b
    assert len({i for i, _ in seen}) == 18  # one epoch, no repeats, the last 2 dropped
    assert {e for _, e in plans[0].items(steps)} == {1}
    assert BatchPlan(20, 3, 2, 0, seed=1).items(4) == plans[0].items(4)


def test_training_writes_a_checkpoint(tmp_path):
    report = train(small_config(tmp_path / "run"))
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["arch.json", "last.pt", "model.onnx", "model.pt", "report.json"]
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["iterations"] == 6 and saved["world_size"] == 1
    assert 0.0 <= saved["miou"] <= 1.0 and saved["params"] == report["params"] > 0
    assert [h["iteration"] for h in saved["history"]] == list(range(1, 7))
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.arch.input_shape == [1, 3, 64, 64] and ckpt.arch.num_classes == 8
    assert len(ckpt.arch.class_names) == 8


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    train(small_config(tmp_path / "straight"))
    calls = {"n": 0}
    real_loss = train_module.segmentation_loss

    def interrupt_on_fourth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # Ctrl-C in the middle of the fourth step: it finishes, then stops
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "segmentation_loss", interrupt_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        train(small_config(tmp_path / "resumed"))
    monkeypatch.setattr(train_module, "segmentation_loss", real_loss)
    state = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert state["iteration"] == 4
    assert not (tmp_path / "resumed" / "model.pt").exists()
    train(small_config(tmp_path / "resumed", resume=True))
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_refuses_to_overwrite_or_resume_mismatched(tmp_path):
    with pytest.raises(EdgepruneError, match="no training state to resume"):
        train(small_config(tmp_path / "run", resume=True))
    assert not (tmp_path / "run").exists()
    train(small_config(tmp_path / "run", iters=2))
    with pytest.raises(EdgepruneError, match="already holds a training run"):
        train(small_config(tmp_path / "run", iters=2))
    with pytest.raises(EdgepruneError, match="iters=2, not 4"):
        train(small_config(tmp_path / "run", iters=4, resume=True))


def test_user_model_with_wrong_class_count_is_refused(tmp_path):
    with pytest.raises(EdgepruneError, match="outputs 3 channels but the dataset has 8 classes"):
        train(small_config(tmp_path / "run", model="tests.pruning.fixed_classes:build"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_data_parallel_training_with_torchrun(tmp_path):
    torchrun = shutil.which("torchrun") or None
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]) + [
        "--standalone", "--nproc-per-node", "2", "-m", "edgeprune", "train",
        "--model", "topformer-tiny", "--data", "synthetic", "--iters", "4", "--batch-size", "2",
        "--crop-size", "64", "--input-size", "64", "--val-images", "4", "--workers", "0",
        "--out", str(tmp_path / "ddp"),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "ddp" / "report.json").read_text())
    assert report["world_size"] == 2 and report["batch_size"] == 2
