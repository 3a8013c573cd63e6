"""``edgeprune compile`` and ``edgeprune run``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.cli.commands import VERBS
from edgeprune.cli.commands import compile as compile_cmd
from edgeprune.cli.commands import run as run_cmd
from tests.compiler.checkpoints import reference, sample_input


def invoke(*argv: str) -> int:
    """Parse and run one of the two verbs as ``edgeprune.cli`` does."""
    parser = argparse.ArgumentParser(prog="edgeprune")
    sub = parser.add_subparsers(dest="verb", required=True)
    compile_cmd.add_parser(sub)
    run_cmd.add_parser(sub)
    args = parser.parse_args(list(argv))
    return args.run(args)


def test_run_writes_the_output(user_artifact, user_checkpoint, tmp_path, capsys):
    x = sample_input((1, 3, 45, 61), seed=5)
    np.save(tmp_path / "x.npy", x)
    assert invoke("run", str(user_artifact), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")) == 0
    assert "logits [1, 5, 12, 16]" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), reference(user_checkpoint, x), atol=1e-4)


def test_run_rejects_wrong_shape(user_artifact, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(EdgepruneError, match=r"input 'input' must be float32 of shape \[1, 3, 45, 61\]"):
        invoke("run", str(user_artifact), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert not (tmp_path / "y.npy").exists()


def test_run_rejects_unreadable_input(user_artifact, tmp_path):
    (tmp_path / "x.npy").write_text("nope")
    with pytest.raises(EdgepruneError, match="x.npy"):
        invoke("run", str(user_artifact), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))


def test_compile_with_input_shape_and_tuning_log(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"], name="conv", pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.linspace(-1, 1, 108).astype(np.float32))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    from edgeprune.compiler.targets import resolve_target
    from edgeprune.compiler.tuner.tasks import model_tasks

    record = {"version": 1, "workload": "nothing(x=1):float32", "rule": "generic", "target": resolve_target("host"),
              "device_key": "local", "knobs": {"vec": 4}, "latency": {"median_ms": 1.0, "runs": 1}, "time": ""}
    (tmp_path / "tuning.jsonl").write_text(json.dumps(record) + "\n")
    out = tmp_path / "art"
    argv = ["compile", str(tmp_path / "m.onnx"), "--input-shape", "1,3,9,10", "--tuning-log", str(tmp_path / "tuning.jsonl")]
    assert invoke(*argv, "--out", str(out)) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["inputs"][0]["shape"] == [1, 3, 9, 10] and meta["tuned"] is False  # the log covers no workload here
    assert "warning" not in capsys.readouterr().err

    # a log whose search never measured today's default: the tuned config is used, with a warning
    (entry,) = meta["schedules"]
    (task,) = model_tasks(tmp_path / "m.onnx", resolve_target("host"), [1, 3, 9, 10])
    knob, values = next((k, v) for k, v in task.rule.space(task.workload).items() if len(v) > 1)
    other = {**entry["config"], knob: next(v for v in values if v != entry["config"][knob])}
    stale = {**record, "workload": entry["workload"], "rule": entry["rule"], "knobs": other}
    (tmp_path / "stale.jsonl").write_text(json.dumps(stale) + "\n")
    assert invoke("compile", str(tmp_path / "m.onnx"), "--input-shape", "1,3,9,10", "--tuning-log",
                  str(tmp_path / "stale.jsonl"), "--out", str(tmp_path / "art2")) == 0
    err = capsys.readouterr().err
    assert "1 tuned workload(s)" in err and entry["workload"] in err
    assert json.loads((tmp_path / "art2" / "meta.json").read_text())["schedules"][0]["default"] == entry["config"]
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(EdgepruneError, match="bad.jsonl"):
        invoke("compile", str(tmp_path / "m.onnx"), "--tuning-log", str(tmp_path / "bad.jsonl"), "--out", str(out))


def test_bad_input_shape_argument(capsys):
    with pytest.raises(SystemExit):
        invoke("compile", "x.onnx", "--input-shape", "1,3,H,W", "--out", "art")
    assert "N,C,H,W" in capsys.readouterr().err


@pytest.mark.skipif(compile_cmd not in VERBS, reason="compile/run not registered in edgeprune.cli.commands yet")
def test_cli_one_line_error(cli, tmp_path):
    (tmp_path / "m.onnx").write_text("garbage")
    result = cli("compile", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "art"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: ") and "not an ONNX model" in lines[0]


def test_run_refuses_a_pickled_input_without_numpys_advice_to_load_it(user_artifact, tmp_path):
    np.save(tmp_path / "x.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(EdgepruneError, match="not a .npy array file") as caught:
        invoke("run", str(user_artifact), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert "allow_pickle" not in str(caught.value)
