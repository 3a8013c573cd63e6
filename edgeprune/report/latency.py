"""Latency over time: one chart per model and device, one line per target and thread count.

Each point is a run's median with a min-p90 whisker; a run that is significantly slower or
faster than the previous run of its line (``device.regression.compare``) is drawn in red or
green, and the table below the chart says by how much.

A/B comparisons (``bench NEW --against OLD``) are marked as such: NEW is a point of its line,
coloured by the paired decision of its comparison rather than by a comparison with the
previous run, and OLD, a reference timed beside it (an older build measured now), is listed in
the table but left off the line, where it would read as the model's latency at that time.
``ab_rows`` lists the comparisons themselves, with the kernels each found changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgeprune.device.history import RecordedComparison, Run, canonical_json
from edgeprune.device.regression import NO_CHANGE, Comparison, compare
from edgeprune.report.charts import Line, Point, line_chart

TABLE_ROWS = 12


@dataclass(frozen=True)
class RunRow:
    run: Run
    line: str
    change: Comparison | None  # vs the previous run of its line; None for A/B runs and first runs
    ab: RecordedComparison | None = None  # the A/B comparison this run is the NEW or OLD of
    ab_reference: bool = False  # True: this run is the OLD of ``ab``


@dataclass(frozen=True)
class ABRow:
    """One A/B comparison as the report lists it."""

    comparison: RecordedComparison
    kernels: list[str]  # "FUNC: +0.093 ms (1.55x)" per kernel found changed; empty: none or not compared
    kernels_compared: bool


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


def ab_summary(comparison: RecordedComparison) -> str:
    """``slower 1.104x OLD (CI 1.089-1.125)``."""
    d = comparison.detail
    return f"{d['verdict']} {d['ratio']:.3f}x OLD (CI {d['ci_low']:.3f}-{d['ci_high']:.3f})"


def _tooltip(run: Run, change: Comparison | None, ab: RecordedComparison | None) -> str:
    s = run.stats
    text = (f"run #{run.id} {run.time}\nmedian {s.median_ms:.3f} ms (min {s.min_ms:.3f}, p90 {s.p90_ms:.3f}), "
            f"{s.fps:.1f} FPS, {s.runs} runs")
    if run.git_commit:
        text += f"\ncommit {run.git_commit[:12]}"
    if change is not None:
        text += f"\nvs previous run: {change.describe()}"
    if ab is not None:
        text += f"\nA/B vs run #{ab.old.id}, timed in alternating rounds: {ab_summary(ab)}"
    return text


def latency_views(runs: Sequence[Run], comparisons: Sequence[RecordedComparison] = ()) -> list[SeriesView]:
    """One view per (model, device key), sorted by model then device."""
    new_of = {c.new.id: c for c in comparisons}
    old_of = {c.old.id: c for c in comparisons}
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.device_key)].append(run)
    views = []
    for (model, key), group in sorted(groups.items()):
        lines: dict[tuple[str, int], list[Run]] = defaultdict(list)
        for run in sorted(group, key=lambda r: r.id or 0):
            lines[(canonical_json(run.target), run.threads)].append(run)
        chart_lines, rows, charted = [], [], []
        for line_runs in lines.values():
            first = line_runs[0]
            threads = f"{first.threads} thread{'s' if first.threads > 1 else ''}" if first.threads else "default threads"
            name = f"{target_label(first.target)}, {threads}"
            rows += [RunRow(run, name, None, old_of[run.id], ab_reference=True) for run in line_runs if run.id in old_of]
            on_line = [run for run in line_runs if run.id not in old_of]
            charted += on_line
            points = []
            for previous, run in zip([None, *on_line], on_line):
                ab = new_of.get(run.id)
                change = compare(run.stats.timings_ms, previous.stats.timings_ms) if previous and ab is None else None
                verdict = ab.verdict if ab is not None else change.verdict if change else NO_CHANGE
                s = run.stats
                points.append(Point(_timestamp(run), s.median_ms, s.min_ms, s.p90_ms, _tooltip(run, change, ab),
                                    "" if verdict == NO_CHANGE else verdict))
                rows.append(RunRow(run, name, change, ab))
            if points:
                chart_lines.append(Line(name, points))
        rows.sort(key=lambda r: -(r.run.id or 0))
        chart = line_chart(chart_lines, _x_labels(charted), "median latency (ms)") if chart_lines else ""
        views.append(SeriesView(model, key, rows[0].run.device, chart, rows[:TABLE_ROWS], len(group)))
    return views


def _kernel_line(change: dict[str, Any]) -> str:
    c = change["comparison"]
    return f"{', '.join(change['funcs'])}: {change['delta_ms']:+.3f} ms ({c['ratio']:.2f}x)"


def ab_rows(comparisons: Sequence[RecordedComparison]) -> list[ABRow]:
    """The A/B comparisons, newest first."""
    rows = []
    for comparison in sorted(comparisons, key=lambda c: -c.id):
        changed = comparison.detail.get("kernels_changed")
        rows.append(ABRow(comparison, [_kernel_line(k) for k in changed or []], changed is not None))
    return rows
