"""Latency over time: one chart per model and device, one line per target and thread count.

Each point is a run's median with a min-p90 whisker; a run that is significantly slower or
faster than the previous run of its line (``device.regression.compare``) is drawn in red or
green, and the table below the chart says by how much.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgeprune.device.history import Run, canonical_json
from edgeprune.device.regression import NO_CHANGE, Comparison, compare
from edgeprune.report.charts import Line, Point, line_chart

TABLE_ROWS = 12


@dataclass(frozen=True)
class RunRow:
    run: Run
    line: str
    change: Comparison | None


@dataclass(frozen=True)
class SeriesView:
    model: str
    device_key: str
    device: str
    chart: str
    rows: list[RunRow]  # newest first
    run_count: int


def target_label(target: dict[str, Any]) -> str:
    detail = target.get("mcpu") or target.get("device") or target.get("mtriple") or ""
    return f"{target.get('kind', '?')} {detail}".strip()


def _timestamp(run: Run) -> float:
    try:
        return datetime.fromisoformat(run.time).timestamp()
    except ValueError:
        return float(run.id or 0)


def _x_labels(runs: list[Run], count: int = 5) -> dict[float, str]:
    ordered = sorted(runs, key=_timestamp)
    days = {r.time[:10] for r in ordered}
    step = max(1, (len(ordered) - 1) // (count - 1)) if len(ordered) > 1 else 1
    picked = ordered[::step][:count - 1] + [ordered[-1]]
    fmt = "%H:%M" if len(days) == 1 else "%m-%d %H:%M"
    labels = {}
    for run in picked:
        try:
            labels[_timestamp(run)] = datetime.fromisoformat(run.time).strftime(fmt)
        except ValueError:
            labels[_timestamp(run)] = f"#{run.id}"
    return labels


def _tooltip(run: Run, change: Comparison | None) -> str:
    s = run.stats
    text = (f"run #{run.id} {run.time}\nmedian {s.median_ms:.3f} ms (min {s.min_ms:.3f}, p90 {s.p90_ms:.3f}), "
            f"{s.fps:.1f} FPS, {s.runs} runs")
    if run.git_commit:
        text += f"\ncommit {run.git_commit[:12]}"
    if change is not None:
        text += f"\nvs previous run: {change.describe()}"
    return text


def latency_views(runs: list[Run]) -> list[SeriesView]:
    """One view per (model, device key), sorted by model then device."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.device_key)].append(run)
    views = []
    for (model, key), group in sorted(groups.items()):
        lines: dict[tuple[str, int], list[Run]] = defaultdict(list)
        for run in sorted(group, key=lambda r: r.id or 0):
            lines[(canonical_json(run.target), run.threads)].append(run)
        chart_lines, rows = [], []
        for line_runs in lines.values():
            first = line_runs[0]
            threads = f"{first.threads} thread{'s' if first.threads > 1 else ''}" if first.threads else "default threads"
            name = f"{target_label(first.target)}, {threads}"
            points = []
            for previous, run in zip([None, *line_runs], line_runs):
                change = compare(run.stats.timings_ms, previous.stats.timings_ms) if previous else None
                flag = change.verdict if change and change.verdict != NO_CHANGE else ""
                s = run.stats
                points.append(Point(_timestamp(run), s.median_ms, s.min_ms, s.p90_ms, _tooltip(run, change), flag))
                rows.append(RunRow(run, name, change))
            chart_lines.append(Line(name, points))
        rows.sort(key=lambda r: -(r.run.id or 0))
        chart = line_chart(chart_lines, _x_labels(group), "median latency (ms)")
        views.append(SeriesView(model, key, rows[0].run.device, chart, rows[:TABLE_ROWS], len(group)))
    return views
