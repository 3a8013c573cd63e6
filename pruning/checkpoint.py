"""The checkpoint directory: the contract between training/pruning and the compiler.

::

    DIR/
      model.pt     the state_dict; loads with ``torch.load(..., weights_only=True)``
      arch.json    what to build before loading it: model name (or ``pkg.mod:fn``), classes,
                   input shape, preprocessing, per-layer widths, and the pruning policy if any
      model.onnx   opset 17, input ``input`` (NCHW float32, static shape), output ``logits``
      report.json  params, MACs, mIoU, data, iterations, ...

Files are staged in a hidden folder inside DIR and renamed into place with ``arch.json``
last, so a DIR with an ``arch.json`` always has the files it describes.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.base.fileio import write_json
from edgeprune.base.formats import check_version
from edgeprune.pruning.models import build_model
from edgeprune.pruning.onnx_export import export_onnx
from edgeprune.pruning.slicing import apply_policy

FORMAT = "edgeprune-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
ARCH_FILE = "arch.json"
ONNX_FILE = "model.onnx"
REPORT_FILE = "report.json"


@dataclass
class ArchInfo:
    """The contents of ``arch.json``."""

    model: str
    num_classes: int
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    config: dict[str, Any] = field(default_factory=dict)
    widths: dict[str, int] = field(default_factory=dict)
    class_names: list[str] | None = None
    policy: dict[str, list[int]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, obj: Any, source: Path) -> "ArchInfo":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise EdgepruneError(f"{source}: not an edgeprune arch.json (no format '{FORMAT}')")
        check_version(obj.get("format_version"), FORMAT_VERSION, where=str(source))
        names = {f for f in cls.__dataclass_fields__}
        missing = sorted(n for n in ("model", "num_classes", "input_shape", "mean", "std") if n not in obj)
        if missing:
            raise EdgepruneError(f"{source}: missing field(s) {', '.join(missing)}")
        shape = obj["input_shape"]
        if not (isinstance(shape, list) and len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape)):
            raise EdgepruneError(f"{source}: input_shape must be 4 positive integers (N,C,H,W), got {shape!r}")
        return cls(**{k: v for k, v in obj.items() if k in names})


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels (features) of every conv and linear layer, by qualified name."""
    widths = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            widths[name] = module.out_channels
        elif isinstance(module, nn.Linear):
            widths[name] = module.out_features
    return widths


def save_checkpoint(
    out_dir: str | Path,
    model: nn.Module,
    arch: ArchInfo,
    report: dict[str, Any],
    export: bool = True,
) -> Path:
    """Write the checkpoint files into ``out_dir`` (created if needed); returns it."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arch.widths = layer_widths(model)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        torch.save(model.state_dict(), staging / MODEL_FILE)
        if export:
            export_onnx(model, arch.input_shape, staging / ONNX_FILE)
        write_json(staging / REPORT_FILE, report)
        write_json(staging / ARCH_FILE, arch.to_json())
        for name in (MODEL_FILE, ONNX_FILE, REPORT_FILE, ARCH_FILE):
            if (staging / name).exists():
                (staging / name).replace(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_arch(ckpt_dir: str | Path) -> ArchInfo:
    """Read and validate ``arch.json`` of a checkpoint directory."""
    root = Path(ckpt_dir)
    if not root.is_dir():
        raise EdgepruneError(f"{root}: no such checkpoint directory")
    path = root / ARCH_FILE
    if not path.is_file():
        raise EdgepruneError(f"{path}: missing; {root} is not an edgeprune checkpoint directory")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgepruneError(f"{path}: not valid JSON ({exc})") from exc
    return ArchInfo.from_json(obj, path)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state_dict safely (``weights_only``), turning any failure into one clear line."""
    if not path.is_file():
        raise EdgepruneError(f"{path}: missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message advises retrying with weights_only=False, which would run the file's code.
        raise EdgepruneError(f"{path}: holds Python objects besides tensors, which loading would have to run; "
                             "edgeprune loads weights only and refuses it (nothing in it was executed)") from exc
    except Exception as exc:
        raise EdgepruneError(f"{path}: cannot be read as a PyTorch state_dict (truncated or corrupt?): "
                             f"{first_line(exc)}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EdgepruneError(f"{path}: does not hold a state_dict (a dict of tensors)")
    return state


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: Path, arch_model: str) -> None:
    """Raise a one-line error if ``state`` does not fit ``model`` exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if wrong:
        k = wrong[0]
        problems.append(
            f"{k} has shape {tuple(state[k].shape)} in the file but {tuple(expected[k].shape)} in "
            f"the architecture" + (f" (and {len(wrong) - 1} more mismatches)" if len(wrong) > 1 else "")
        )
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}")
    if problems:
        raise EdgepruneError(f"{source}: does not match arch.json (model {arch_model}): {'; '.join(problems)}")


def build_from_arch(arch: ArchInfo) -> nn.Module:
    """Build the (unloaded) model that ``arch`` describes: the named model, sliced by its policy."""

    model = build_model(arch.model, num_classes=arch.num_classes)
    return apply_policy(model, arch.policy) if arch.policy else model


@dataclass
class Checkpoint:
    model: nn.Module
    arch: ArchInfo
    report: dict[str, Any]
    path: Path


def load_checkpoint(ckpt_dir: str | Path) -> Checkpoint:
    """Rebuild the model of a checkpoint directory and load its weights (eval mode)."""
    root = Path(ckpt_dir)
    arch = read_arch(root)
    try:
        model = build_from_arch(arch)
    except EdgepruneError as exc:
        raise EdgepruneError(f"{root / ARCH_FILE}: {exc}") from exc
    state = read_state_dict(root / MODEL_FILE)
    check_state_dict(model, state, root / MODEL_FILE, arch.model)
    model.load_state_dict(state)
    model.eval()
    report_path = root / REPORT_FILE
    report: dict[str, Any] = {}
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text())
        except json.JSONDecodeError as exc:
            raise EdgepruneError(f"{report_path}: not valid JSON ({exc})") from exc
    return Checkpoint(model=model, arch=arch, report=report, path=root)
