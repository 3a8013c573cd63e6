"""The pruning job end to end on small settings: both methods, the checkpoint, and bad input."""

import json

import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.checkpoint import ArchInfo, load_checkpoint, save_checkpoint
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.models import build_model
from edgeprune.pruning.prune import METHODS, PruneConfig, prune
from edgeprune.pruning.weight_recipe import DEFAULT_LR_FRACTION
from tests.pruning.nets import randomize


def small(out, **overrides) -> PruneConfig:
    settings = dict(model="topformer-tiny", data="synthetic", out=out, target_gmacs=0.0045, iters=2,
                    weight_steps=1, batch_size=2, crop_size=(64, 64), input_size=(64, 64), val_images=2,
                    workers=0, progress_interval_s=0)
    settings.update(overrides)
    return PruneConfig(**settings)


def trained_checkpoint(tmp_path, **config):
    classes = build_dataset("synthetic", split="val").info.num_classes
    torch.manual_seed(0)
    arch = ArchInfo(model="topformer-tiny", num_classes=classes, input_shape=[1, 3, 64, 64], mean=[0.0] * 3, std=[1.0] * 3)
    # Random BatchNorm scales: Torch-Pruning's bn-scale criterion ranks nothing when all are 1.
    model = randomize(build_model("topformer-tiny", num_classes=classes)).train()
    return save_checkpoint(tmp_path / "trained", model, arch, {"config": config}, export=False)


@pytest.mark.parametrize("method", METHODS)
def test_prune_writes_a_sliced_checkpoint_at_the_target(tmp_path, method):
    torch.set_num_threads(1)
    trained = trained_checkpoint(tmp_path, lr=0.1)
    report = prune(small(tmp_path / method, method=method, model=None, from_dir=trained))
    out = tmp_path / method
    assert {"arch.json", "model.pt", "model.onnx", "report.json", "policy.json"} <= {p.name for p in out.iterdir()}
    assert report["macs"] <= report["target_macs"] and report["target_error"] > -0.02
    assert report["macs"] < report["macs_before"] and report["params"] < report["params_before"]
    ckpt = load_checkpoint(out)
    assert count_cost(ckpt.model, (1, 3, 64, 64)).macs == report["macs"]
    policy = json.loads((out / "policy.json").read_text())
    assert policy == ckpt.arch.policy and any(len(g["kept"]) < g["size"] for g in policy["groups"])


def test_unreachable_target_and_bad_layers(tmp_path):
    with pytest.raises(EdgepruneError, match="out of reach"):
        prune(small(tmp_path / "a", target_gmacs=1e-6))
    with pytest.raises(EdgepruneError, match="names no module"):
        prune(small(tmp_path / "b", layers=["tpm.nope"]))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_model_without_prunable_channels(tmp_path):
    with pytest.raises(EdgepruneError, match="no prunable conv"):
        prune(small(tmp_path / "c", model="tests.pruning.prunable_nothing:build", target_gmacs=1e-4))


def test_an_existing_checkpoint_is_never_overwritten(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "arch.json").write_text("{}")
    with pytest.raises(EdgepruneError, match="already holds a checkpoint"):
        prune(small(tmp_path / "p"))
    assert (tmp_path / "p" / "arch.json").read_text() == "{}"


def test_macs_are_counted_at_the_checkpoints_input_size(tmp_path):
    classes = build_dataset("synthetic", split="val").info.num_classes
    torch.manual_seed(0)
    arch = ArchInfo(model="topformer-tiny", num_classes=classes, input_shape=[1, 3, 96, 96], mean=[0.0] * 3, std=[1.0] * 3)
    trained = save_checkpoint(tmp_path / "trained", build_model("topformer-tiny", num_classes=classes), arch, {}, export=False)
    report = prune(small(tmp_path / "p", model=None, from_dir=trained, input_size=None, target_gmacs=0.009))
    assert report["input_shape"] == [1, 3, 96, 96]


def test_the_search_ramps_its_target_down_and_the_weights_use_the_checkpoints_lr(tmp_path):
    trained = trained_checkpoint(tmp_path, lr=0.5, weight_decay=3e-4, seed=0)
    report = prune(small(tmp_path / "p", model=None, from_dir=trained, iters=8, search_fraction=0.5, ramp_fraction=1.0))
    assert report["weight_recipe"]["lr"] == pytest.approx(DEFAULT_LR_FRACTION * 0.5)
    assert report["weight_recipe"]["weight_decay"] == 3e-4
    targets = [h["target_gmacs"] for h in report["history"] if "target_gmacs" in h]
    assert len(targets) == 4 and targets == sorted(targets, reverse=True)
    assert targets[0] > targets[-1] == pytest.approx(report["target_macs"] / 1e9)
    # The search's 4 iterations made 4 weight updates; the sliced model got the other 4.
    assert report["weight_updates"] == 8 and len([h for h in report["history"] if "update" in h]) == 4
    assert report["lam"] > 0 and report["max_flips"] >= 1


def test_the_pruning_seed_orders_batches_but_never_changes_the_data(tmp_path):
    trained = trained_checkpoint(tmp_path, seed=5)
    reports = [prune(small(tmp_path / f"s{seed}", model=None, from_dir=trained, method="uniform", seed=seed))
               for seed in (0, 1)]
    assert all(r["data_seed"] == 5 for r in reports)
