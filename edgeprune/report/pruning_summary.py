"""What pruning changed: per-layer widths before and after, and the costs and mIoU of both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.pruning.checkpoint import REPORT_FILE, layer_widths, read_arch


@dataclass(frozen=True)
class LayerWidth:
    layer: str
    before: int
    after: int


@dataclass(frozen=True)
class PruningSummary:
    model: str
    layers: list[LayerWidth]  # the layers whose width changed, in model order
    unchanged: int
    metrics: list[tuple[str, str, str]]  # (name, before, after), already formatted
    policy_groups: int


def _report(ckpt: Path) -> dict[str, Any]:
    path = ckpt / REPORT_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _format(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "mIoU":
        return f"{100 * value:.2f}%"
    if name == "GMACs":
        return f"{value / 1e9:.4f}"
    return f"{value / 1e6:.3f}M"


def pruning_summary(pruned: str | Path, unpruned: str | Path | None = None) -> PruningSummary:
    """Compare a pruned checkpoint with its unpruned one (or, without it, with a fresh build of its model)."""
    from edgeprune.pruning.models import build_model

    pruned = Path(pruned)
    arch = read_arch(pruned)
    if unpruned is not None:
        before_widths = read_arch(unpruned).widths
        before_report = _report(Path(unpruned))
    else:
        before_widths = layer_widths(build_model(arch.model, num_classes=arch.num_classes))
        before_report = {}
    after_report = _report(pruned)
    layers = [LayerWidth(name, before_widths[name], width) for name, width in arch.widths.items()
              if name in before_widths and before_widths[name] != width]
    metrics = []
    for name, key in (("params", "params"), ("GMACs", "macs"), ("mIoU", "miou")):
        # The prune report's "_before" figures are at the pruned input size; prefer them.
        before = after_report.get(f"{key}_before", before_report.get(key))
        metrics.append((name, _format(name, before), _format(name, after_report.get(key))))
    groups = len(arch.policy.get("groups", [])) if arch.policy else 0
    return PruningSummary(arch.model, layers, len(arch.widths) - len(layers), metrics, groups)
