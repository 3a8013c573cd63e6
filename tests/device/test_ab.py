"""``bench NEW --against OLD``: two real artifacts timed in alternating rounds, the gate and its records."""

import json

import pytest

from edgeprune.cli import main
from edgeprune.device.ab import RoundPlan, measure_ab
from edgeprune.device.history import History
from edgeprune.device.regression import NO_CHANGE, SLOWER
from edgeprune.device.runners.local import LocalRunner
from tests.device.conftest import SLOWED_FUNC

PLAN = RoundPlan(rounds=20, per_round=2, warmup=3)


def test_a_copy_of_the_artifact_is_no_change_and_every_round_is_kept(build_pair):
    result = measure_ab(LocalRunner(), build_pair.same, build_pair.old, threshold=1.05, plan=PLAN, threads=1)
    assert result.comparison.verdict == NO_CHANGE, result.comparison.describe()
    assert len(result.new_rounds_ms) == len(result.old_rounds_ms) == 20
    assert result.new.stats.runs == result.old.stats.runs == 40
    assert result.new.artifact_sha256 == result.old.artifact_sha256 and result.new.threads == 1
    assert result.to_json()["mode"] == "ab"


def test_the_slowed_build_is_slower(build_pair):
    result = measure_ab(LocalRunner(), build_pair.slowed, build_pair.old, threshold=1.05, plan=PLAN, threads=1)
    assert result.comparison.verdict == SLOWER and result.comparison.ci_low > 1.3, result.comparison.describe()
    assert result.new.artifact_sha256 != result.old.artifact_sha256


def test_bench_against_exits_3_names_the_kernel_and_records_one_comparison(build_pair, cli, tmp_path):
    history, out = tmp_path / "h.sqlite", tmp_path / "ab.json"
    args = ["--threads", "1", "--rounds", "20", "--fail-above", "1.05", "--history", str(history)]
    gated = cli("bench", str(build_pair.slowed), "--against", str(build_pair.old), *args, "--json", str(out))
    assert gated.returncode == 3, gated.stdout + gated.stderr
    assert "slower: " in gated.stdout and "REGRESSION: NEW is" in gated.stdout
    changed = [line for line in gated.stdout.splitlines() if line.startswith("  changed: ")]
    assert changed[0].startswith(f"  changed: {SLOWED_FUNC} (conv2d): slower")  # the largest change first
    assert f"tile_co {build_pair.default_config['tile_co']}->1" in changed[0]
    report = json.loads(out.read_text())
    assert report["comparison"]["verdict"] == SLOWER and report["kernels"]["changed"][0] == build_pair.slowed_workload
    assert report["new"]["runs"] == report["old"]["runs"] == 60  # the default 50 runs over 20 rounds: 3 a round
    with History(history) as h:
        (recorded,) = h.comparisons()
        assert recorded.kind == "ab" and recorded.verdict == SLOWER
        assert recorded.new.id == report["history_runs"]["new"] and recorded.old.id == report["history_runs"]["old"]
        assert recorded.new.model == recorded.old.model == "slowed"  # two builds of one model
        assert recorded.detail["kernels_changed"][0]["key"] == build_pair.slowed_workload
        assert len(h.runs()) == 2


def test_bench_against_a_rebuild_passes_the_gate(build_pair, tmp_path, capsys):
    code = main(["bench", str(build_pair.same), "--against", str(build_pair.old), "--threads", "1", "--rounds", "20",
                 "--fail-above", "1.05", "--no-history", "--no-kernels"])
    out = capsys.readouterr().out
    assert code == 0 and "no change: " in out and "REGRESSION" not in out and "kernels:" not in out


@pytest.mark.parametrize("extra, message", [
    (("--baseline", "last"), "give one of them"),
    (("--rounds", "5"), "--rounds 5: a 99% interval on the median ratio needs at least 8"),
])
def test_bench_against_bad_options_fail_before_measuring(build_pair, tmp_path, capsys, extra, message):
    code = main(["bench", str(build_pair.same), "--against", str(build_pair.old), "--history", str(tmp_path / "h.sqlite"),
                 *extra])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and "FPS" not in captured.out


def test_bench_against_something_that_is_not_an_artifact(build_pair, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["bench", str(build_pair.same), "--against", str(tmp_path / "empty"), "--history", str(tmp_path / "h.sqlite")])
    captured = capsys.readouterr()
    assert code == 2 and str(tmp_path / "empty") in captured.err and "FPS" not in captured.out
    with History(tmp_path / "h.sqlite") as h:
        assert h.runs() == [] and h.comparisons() == []
