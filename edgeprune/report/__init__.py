"""``edgeprune report``: one self-contained HTML page about a model's deployment.

Sections, each present when its input is given: latency over time per model and device and
the A/B comparisons (the results history), where the time goes in an artifact (per-kernel
times, profiled on this machine), what pruning changed (per-layer widths, costs, mIoU),
segmentation outputs of the unpruned and pruned models beside the ground truth, and any extra
tables a caller adds (``edgeprune demo`` adds its before/after summary). Charts are inline SVG and images inline
PNG data URIs; the page loads nothing from anywhere and runs no script.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError

TOP_KERNELS = 15


@dataclass(frozen=True)
class Table:
    """A titled table a caller adds to the report (e.g. the demo's before/after summary)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    @classmethod
    def from_json(cls, obj: Any, source: str) -> "Table":
        if not isinstance(obj, dict) or not isinstance(obj.get("title"), str):
            raise EdgepruneError(f"{source}: a table needs a string 'title', 'columns' and 'rows'")
        columns, rows = obj.get("columns"), obj.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in rows
        ):
            raise EdgepruneError(f"{source}: 'rows' must be lists of as many cells as 'columns' has names")
        return cls(obj["title"], [str(c) for c in columns], rows, str(obj.get("note", "")))


def read_table(path: str | os.PathLike[str]) -> Table:
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgepruneError(f"{path}: no such table file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgepruneError(f"{path}: not valid JSON ({exc})") from exc
    return Table.from_json(obj, str(path))


@dataclass
class ReportInputs:
    history: Path | None = None
    checkpoint: Path | None = None  # the pruned checkpoint
    unpruned: Path | None = None
    artifact: Path | None = None
    data: str = "synthetic"
    images: int = 4
    threads: int | None = None
    tables: list[Table] = field(default_factory=list)


def _operator_section(artifact: Path, threads: int | None, runs: list[Any]) -> dict[str, Any]:
    from edgeprune.device.profile import profile_artifact
    from edgeprune.device.runners.base import artifact_sha256
    from edgeprune.report.charts import bar_chart

    profile = profile_artifact(artifact, threads=threads)
    sha = artifact_sha256(artifact)
    matching = [r for r in runs if r.artifact_sha256 == sha]
    bars = [(k.name, [k.ms], f"{k.name}: {k.ms:.4f} ms, {k.calls} call(s)" + (f", {k.rule}" if k.rule else ""))
            for k in profile.top(TOP_KERNELS)]
    return {
        "artifact": artifact, "profile": profile, "run": matching[-1] if matching else None,
        "chart": bar_chart(bars, ["time per inference"], "ms per inference (median)"),
        "kernels": profile.top(TOP_KERNELS),
    }


def _pruning_section(checkpoint: Path, unpruned: Path | None) -> dict[str, Any]:
    from edgeprune.report.charts import bar_chart
    from edgeprune.report.pruning_summary import pruning_summary

    summary = pruning_summary(checkpoint, unpruned)
    bars = [(w.layer, [w.before, w.after], f"{w.layer}: {w.before} -> {w.after} channels ({w.after / w.before:.0%} kept)")
            for w in summary.layers]
    chart = bar_chart(bars, ["before", "after"], "output channels") if bars else ""
    return {"summary": summary, "chart": chart}


def _segmentation_section(inputs: ReportInputs) -> Any:
    from edgeprune.pruning.checkpoint import load_checkpoint
    from edgeprune.report.segmentation import segmentation_samples

    models = []
    if inputs.unpruned is not None:
        models.append(("unpruned", load_checkpoint(inputs.unpruned)))
    models.append(("pruned" if inputs.unpruned is not None else "model", load_checkpoint(inputs.checkpoint)))
    return segmentation_samples(models, inputs.data, inputs.images)


def build_context(inputs: ReportInputs) -> dict[str, Any]:
    """Everything the template shows; the heavy parts run only for the inputs given."""
    import edgeprune
    from edgeprune.device.history import History, now_utc
    from edgeprune.report.latency import ab_rows, latency_views

    runs, comparisons = [], []
    if inputs.history is not None:
        if not Path(inputs.history).is_file():
            raise EdgepruneError(f"{inputs.history}: no such history file (edgeprune bench --history writes one)")
        with History(inputs.history) as history:
            runs, comparisons = history.runs(), history.comparisons()
    context: dict[str, Any] = {
        "generated": now_utc(), "version": edgeprune.__version__, "inputs": inputs,
        "latency": latency_views(runs, comparisons), "ab": ab_rows(comparisons), "run_count": len(runs),
        "tables": inputs.tables,
        "operators": _operator_section(inputs.artifact, inputs.threads, runs) if inputs.artifact else None,
        "pruning": _pruning_section(inputs.checkpoint, inputs.unpruned) if inputs.checkpoint else None,
        "segmentation": _segmentation_section(inputs) if inputs.checkpoint and inputs.images > 0 else None,
    }
    return context


def render(context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("edgeprune.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context)


def write_report(out: str | os.PathLike[str], inputs: ReportInputs) -> Path:
    """Build the page and write it atomically to ``out``."""
    from edgeprune.base.fileio import atomic_path

    if inputs.history is None and inputs.checkpoint is None and inputs.artifact is None and not inputs.tables:
        raise EdgepruneError("nothing to report: give a history, a checkpoint, an artifact or a table")
    if inputs.unpruned is not None and inputs.checkpoint is None:
        raise EdgepruneError("--unpruned needs --checkpoint (the pruned checkpoint to compare it with)")
    html = render(build_context(inputs))
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)
