"""The command line as a user meets it: verbs, exit codes, and one-line errors."""

import json
import os
import signal

import pytest
import tvm

from edgeprune.cli import main
from edgeprune.cli.commands import models


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_and_version(cli):
    result = cli("--help")
    assert result.returncode == 0
    for verb in ("models", "train", "export"):
        assert verb in result.stdout
    assert cli("--version").stdout.startswith("edgeprune ")


def test_models_lists_builtins_with_published_figures(cli):
    result = cli("models")
    assert result.returncode == 0
    for name in ("topformer-tiny", "topformer-small", "topformer-base", "topformer-supernet", "deeplabv3plus-mbv2"):
        assert name in result.stdout
    assert "5.10M" in result.stdout and "2.26M" in result.stdout


def test_unknown_model(cli, tmp_path):
    result = cli("train", "--model", "resnet-9000", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "resnet-9000", "topformer-tiny")
    assert not (tmp_path / "out").exists()


def test_missing_dataset_folder(cli, tmp_path):
    result = cli("train", "--model", "topformer-tiny", "--data", f"ade20k:{tmp_path}/nothing", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, f"{tmp_path}/nothing")
    assert not (tmp_path / "o").exists()


def test_train_then_export_from_the_command_line(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--model", "topformer-tiny", "--iters", "2", "--batch-size", "2", "--crop-size", "64",
                 "--input-size", "64", "--val-images", "2", "--workers", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "done: mIoU" in result.stdout
    (out / "model.onnx").unlink()
    result = cli("export", str(out), "--input-size", "96x128")
    assert result.returncode == 0, result.stderr
    assert (out / "model.onnx").is_file()
    assert json.loads((out / "arch.json").read_text())["input_shape"] == [1, 3, 96, 128]

    data = (out / "model.pt").read_bytes()
    (out / "model.pt").write_bytes(data[:100])
    assert_one_line_error(cli("export", str(out)), "model.pt", "truncated")


@pytest.mark.parametrize("value", ["0", "-3", "ten"])
def test_bad_numbers_are_usage_errors(cli, value, tmp_path):
    result = cli("train", "--model", "topformer-tiny", "--iters", value, "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "--iters: expected an integer from 1 to" in result.stderr


def test_prune_from_the_command_line(cli, tmp_path):
    common = ["prune", "--model", "topformer-tiny", "--iters", "1", "--weight-steps", "1", "--batch-size", "2",
              "--crop-size", "64", "--input-size", "64", "--val-images", "2", "--workers", "0"]
    result = cli(*common, "--target-gmacs", "0.0045", "--out", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    assert "GMACs (target 0.004" in result.stdout and (tmp_path / "p" / "policy.json").is_file()
    assert_one_line_error(cli(*common, "--target-gmacs", "0.000001", "--out", str(tmp_path / "q")), "out of reach")
    assert_one_line_error(cli(*common, "--target-gmacs", "0.004", "--layers", "tpm.nope", "--out", str(tmp_path / "r")),
                          "tpm.nope")
    assert not (tmp_path / "q").exists() and not (tmp_path / "r").exists()


def test_ctrl_c_inside_a_tvm_callback_exits_as_an_interrupt(monkeypatch, capsys):
    """TVM hands a KeyboardInterrupt raised in a Python callback back as a bare RuntimeError."""

    @tvm.transform.module_pass(opt_level=0)
    def interrupted_pass(mod, ctx):
        os.kill(os.getpid(), signal.SIGINT)
        return mod

    monkeypatch.setattr(models, "run", lambda args: interrupted_pass(tvm.IRModule()))
    assert main(["models"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["edgeprune: interrupted"]


@pytest.mark.parametrize("verb", [["run", "ART", "--input", "x.npy", "--output"], ["bench", "ART", "--json"],
                                  ["check", "ART", "--json"], ["report", "--out"]])
def test_an_output_that_is_a_directory_is_refused_before_any_work(cli, tmp_path, verb):
    result = cli(*verb, str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr and "Traceback" not in result.stderr


def test_negative_data_loader_workers_are_refused(cli, tmp_path):
    result = cli("train", "--model", "topformer-tiny", "--data", "synthetic", "--workers", "-1", "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "--workers" in result.stderr and "Traceback" not in result.stderr


def test_more_local_threads_than_cores_is_one_error(cli, tmp_path):
    result = cli("bench", str(tmp_path), "--threads", "1000", "--no-history")
    assert_one_line_error(result, "--threads 1000", "cores")


@pytest.mark.parametrize("argv, message", [
    (["bench", "ART", "--runs", "1000000000"], "--runs: expected an integer from 1 to 1000000"),
    (["bench", "ART", "--timeout-s", "0"], "--timeout-s: expected a number above 0"),
    (["tune", "M", "--trials", "5", "--log", "l", "--confirm-top", "-1"], "--confirm-top: expected an integer from 0"),
    (["train", "--model", "m", "--lr", "nan", "--out", "o"], "--lr: expected a number above 0"),
    (["prune", "--target-gmacs", "inf", "--out", "o"], "--target-gmacs: expected a number above 0"),
    (["report", "--out", "r.html", "--images", "-1"], "--images: expected an integer from 0 to 64"),
    (["compile", "M", "--input-shape", "1,3,100000,8"], "each at most 16384"),
])
def test_every_numeric_option_is_bounded(cli, argv, message):
    result = cli(*argv)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
