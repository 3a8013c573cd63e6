"""Is a run faster, slower, or unchanged against a baseline? The test asv uses, on raw timings.

A change is reported only when it is both *significant* (two-sided Mann-Whitney U test on the
two runs' raw timings, p < ``alpha``) and *large* (the ratio of medians beyond ``threshold``,
or below its inverse). Either alone flaps: with 50 timings per run, the U test finds the
few-percent drift between two back-to-back runs of one artifact significant, and a lone
ratio moves with every noisy sample. Requiring both keeps a stable result at "no change".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from edgeprune.device.history import History, Run

ALPHA = 0.01
THRESHOLD = 1.05
FASTER, SLOWER, NO_CHANGE = "faster", "slower", "no change"


@dataclass(frozen=True)
class Comparison:
    verdict: str
    ratio: float
    p_value: float
    current_median_ms: float
    baseline_median_ms: float
    current_runs: int
    baseline_runs: int
    threshold: float
    alpha: float
    note: str = ""

    def describe(self) -> str:
        """``slower: 1.21x the baseline's median (8.47 ms vs 7.00 ms), p = 3.1e-12``."""
        note = f"; {self.note}" if self.note else ""
        return (f"{self.verdict}: {self.ratio:.3f}x the baseline's median ({self.current_median_ms:.3f} ms vs "
                f"{self.baseline_median_ms:.3f} ms), p = {self.p_value:.2g}{note}")

    def to_json(self) -> dict:
        return asdict(self)


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact U test can give for samples of n1 and n2: 2 / C(n1+n2, n1)."""
    log_comb = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)
    return min(1.0, 2.0 * math.exp(-log_comb))


def compare(current: Sequence[float], baseline: Sequence[float], threshold: float = THRESHOLD,
            alpha: float = ALPHA) -> Comparison:
    """Compare the raw timings (ms) of a run with a baseline's; ``threshold`` > 1 is the minimum effect."""
    if threshold <= 1.0:
        raise ValueError(f"threshold must be above 1, got {threshold}")
    if not current or not baseline:
        raise ValueError("both runs need raw timings")
    cur, base = np.asarray(current, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    ratio = float(np.median(cur) / np.median(base))
    p = float(mannwhitneyu(cur, base, alternative="two-sided", method="auto").pvalue)
    note = ""
    if smallest_p(len(cur), len(base)) >= alpha:
        note = f"too few runs ({len(cur)} and {len(base)}) for p < {alpha:g}"
    significant = p < alpha and not note
    verdict = NO_CHANGE
    if significant and ratio >= threshold:
        verdict = SLOWER
    elif significant and ratio <= 1.0 / threshold:
        verdict = FASTER
    return Comparison(
        verdict=verdict, ratio=ratio, p_value=p, current_median_ms=float(np.median(cur)),
        baseline_median_ms=float(np.median(base)), current_runs=len(cur), baseline_runs=len(base),
        threshold=threshold, alpha=alpha, note=note,
    )


@dataclass(frozen=True)
class GateResult:
    """A recorded run and, if a baseline was asked for and found, its comparison."""

    run: Run
    baseline: Run | None
    comparison: Comparison | None
    fail_above: float | None

    @property
    def failed(self) -> bool:
        """A regression beyond ``fail_above``: significantly slower by at least that ratio."""
        return (self.fail_above is not None and self.comparison is not None
                and self.comparison.verdict == SLOWER and self.comparison.ratio >= self.fail_above)

    def lines(self, ref: str | None) -> list[str]:
        out = [f"recorded {self.run.label()}"]
        if ref is None:
            return out
        if self.baseline is None:
            return [*out, f"baseline {ref}: no earlier run of this model on this device, target and thread count; nothing to compare"]
        if self.baseline.series != self.run.series:
            out.append(f"note: the baseline {self.baseline.label()} is of another series "
                       f"({self.baseline.threads} threads, target {self.baseline.target})")
        out.append(f"vs baseline {ref} = {self.baseline.label()}: {self.comparison.describe()}")
        if self.failed:
            out.append(f"REGRESSION: {self.comparison.ratio:.3f}x is beyond --fail-above {self.fail_above:g}")
        return out


def record_and_compare(history_path: str | Path, run: Run, ref: str | None = None,
                       fail_above: float | None = None) -> GateResult:
    """Append ``run`` to the history and compare it with the baseline ``ref`` names (looked up first).

    The minimum effect is ``fail_above`` when given (so "slower" and "fails the gate" agree),
    else :data:`THRESHOLD`.
    """
    with History(history_path) as history:
        baseline = history.baseline(ref, run) if ref is not None else None
        recorded = history.record(run)
    comparison = None
    if baseline is not None:
        comparison = compare(run.stats.timings_ms, baseline.stats.timings_ms, threshold=fail_above or THRESHOLD)
    return GateResult(recorded, baseline, comparison, fail_above)
