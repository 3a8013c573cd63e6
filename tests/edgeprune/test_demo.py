"""The demo's stages on a tiny budget: results recorded, the summary table, resuming."""

from __future__ import annotations

import json

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.demo import STATE_FILE, DemoConfig, run_demo, summary_table


def tiny(out) -> DemoConfig:
    return DemoConfig(out=out, train_iters=4, batch_size=2, crop=(64, 64), size=(64, 64), prune_iters=2, val_images=2, tune_trials=3, tune_workloads=1,
                      bench_rounds=1, bench_runs=2, threads=1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(tiny(out))


def test_every_stage_recorded_with_pruned_model_smaller(finished):
    out, results = finished
    saved = json.loads((out / STATE_FILE).read_text())["stages"]
    assert list(saved) == list(results) == ["train", "prune", "tune", "compile", "adreno", "bench", "report"]
    assert results["prune"]["macs"] < results["train"]["macs"]
    assert abs(results["prune"]["target_error"]) < 0.02
    assert results["compile"]["pruned"]["tuned"] == 1 and results["compile"]["trained"]["tuned"] == 0
    assert json.loads((out / "pruned-host" / "meta.json").read_text())["tuned"]
    engines = results["bench"]["engines"]
    assert set(engines) == {"trained/edgeprune", "trained/onnxruntime", "pruned/edgeprune", "pruned/onnxruntime"}
    assert all(e["runs"] == 2 and e["median_ms"] > 0 for e in engines.values())
    assert results["adreno"]["kernels"] > 10 and (out / "pruned-adreno660" / "meta.json").is_file()
    html = (out / "report.html").read_text()
    assert "Before and after pruning" in html and html.count("<svg") >= 2


def test_summary_table_has_both_models_and_ratio(finished):
    table = summary_table(finished[1])
    rows = table.splitlines()
    assert rows[1].startswith("unpruned") and rows[2].startswith("pruned")
    assert rows[2].rstrip().endswith("x")
    assert rows[3].startswith("report: ")


def test_rerun_skips_completed_stages(finished, capsys):
    out, results = finished
    again = run_demo(tiny(out))
    assert again == results
    assert capsys.readouterr().out.count("done earlier, kept") == len(results)


def test_corrupt_state_file_is_a_one_line_error(tmp_path):
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(EdgepruneError, match=STATE_FILE):
        run_demo(tiny(tmp_path))
