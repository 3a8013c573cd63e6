"""The pruning benchmarks' harness on a tiny model: one start, one validation set, runs that resume."""

import pytest
import torch

from benchmarks.pruning_harness import Harness
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.models import build_model
from tests.pruning.nets import randomize


@pytest.fixture
def checkpoint(tmp_path):
    classes = build_dataset("synthetic", split="val").info.num_classes
    torch.manual_seed(0)
    model = randomize(build_model("topformer-tiny", num_classes=classes)).train()
    arch = ArchInfo(model="topformer-tiny", num_classes=classes, input_shape=[1, 3, 64, 64], mean=[0.0] * 3, std=[1.0] * 3)
    report = {"config": {"lr": 0.1, "seed": 3}, "macs": count_cost(model, (1, 3, 64, 64)).macs}
    return save_checkpoint(tmp_path / "trained", model, arch, report, export=False)


def test_arms_share_the_start_and_the_validation_set_and_finished_runs_are_kept(tmp_path, checkpoint):
    torch.set_num_threads(1)
    harness = Harness(tmp_path / "work", checkpoint, val_images=2)
    assert harness.val_set.seed == 3  # the checkpoint's data, whatever the pruning seed
    runs = [harness.run({"target_fraction": 0.7, "iters": 2, "weight_steps": 1, "batch_size": 2, "workers": 0,
                         "seed": seed, "method": method}) for method in ("bilevel", "uniform") for seed in (0, 1)]
    assert {r["from"] for r in runs} == {str(checkpoint)}
    assert all(0.6 < r["macs_fraction"] <= 0.7 for r in runs)
    assert not (tmp_path / "work" / "runs").exists() or not any((tmp_path / "work" / "runs").iterdir())

    again = Harness(tmp_path / "work", checkpoint, val_images=2)
    assert again.unpruned_miou == harness.unpruned_miou
    assert again.run(runs[0]["settings"]) == runs[0]
    assert len((tmp_path / "work" / "runs.jsonl").read_text().splitlines()) == 4  # not run again
