"""Is NEW slower than OLD? The A/B decision on paired rounds, for a loaded or shared machine.

Two artifacts timed in alternating rounds on one device (``device.ab``) see the same load in
each round, so the round's ratio ``median(NEW) / median(OLD)`` cancels what the load did to
both, while the two runs' whole distributions (what ``device.regression`` compares) carry every
load change between them. The decision uses only those per-round ratios:

- the estimate is their median;
- its confidence interval is the sign test's, inverted (order statistics of the ratios chosen
  from the binomial distribution): exact for any continuous distribution of ratios, with no
  symmetry assumed. Wilcoxon's signed-rank interval is tighter on symmetric noise, but load
  bursts are not symmetric (a burst lands in one artifact's half of a round, and the other
  half is never equally lucky), and its Hodges-Lehmann estimate moves with those tails; the
  sign test only counts which side of 1 each round fell, so a few wild rounds cannot move
  it. Its lower efficiency costs rounds, which are cheap.
- A change is reported when the interval excludes 1 (significant) and the estimate is beyond
  ``threshold`` (large enough to matter), as in the stored-baseline gate: either alone flaps.

Ratios are taken in logs, so "NEW is 10% slower" and "OLD is 10% faster" are one statement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binom, binomtest

from edgeprune.device.regression import FASTER, NO_CHANGE, SLOWER

CONFIDENCE = 0.99
METHOD = "sign-test confidence interval on the median per-round ratio"


@dataclass(frozen=True)
class PairedComparison:
    """The decision on ``rounds`` paired ratios NEW / OLD."""

    verdict: str
    ratio: float  # median per-round ratio
    ci_low: float
    ci_high: float
    p_value: float  # two-sided sign test of "the median ratio is 1"
    rounds: int
    threshold: float
    confidence: float
    new_median_ms: float  # medians of the per-round medians, for the record
    old_median_ms: float
    method: str = METHOD

    def describe(self) -> str:
        """``slower: 1.104x OLD (99% CI 1.081-1.127 over 40 rounds), 3.412 ms vs 3.091 ms``."""
        return (f"{self.verdict}: {self.ratio:.3f}x OLD ({self.confidence:.0%} CI {self.ci_low:.3f}-{self.ci_high:.3f} "
                f"over {self.rounds} rounds), {self.new_median_ms:.3f} ms vs {self.old_median_ms:.3f} ms")

    def to_json(self) -> dict:
        return asdict(self)


def min_rounds(confidence: float = CONFIDENCE) -> int:
    """The fewest rounds whose widest interval (smallest to largest ratio) reaches ``confidence``."""
    return math.ceil(math.log2(2.0 / (1.0 - confidence)))


def order_statistic_rank(n: int, confidence: float) -> int:
    """The largest k (1-based) with P(k-th smallest <= median <= k-th largest) >= ``confidence``.

    That coverage is 1 - 2 P(B <= k - 1) for B ~ Binomial(n, 1/2), so k counts the j with
    2 P(B <= j) <= 1 - ``confidence`` (the CDF rises, so they are j = 0 .. k - 1).
    """
    cdf = binom.cdf(np.arange(n // 2 + 1), n, 0.5)
    return int(np.sum(2.0 * cdf <= 1.0 - confidence))


def paired_compare(new_ms: Sequence[float], old_ms: Sequence[float], threshold: float,
                   confidence: float = CONFIDENCE) -> PairedComparison:
    """Decide on per-round times (ms) of NEW and OLD, one pair per round; ``threshold`` > 1."""
    if threshold <= 1.0:
        raise ValueError(f"threshold must be above 1, got {threshold}")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    new, old = np.asarray(new_ms, dtype=np.float64), np.asarray(old_ms, dtype=np.float64)
    if new.shape != old.shape or new.ndim != 1:
        raise ValueError(f"need one NEW and one OLD time per round, got {new.shape} and {old.shape}")
    n = len(new)
    if n < min_rounds(confidence):
        raise ValueError(f"{n} rounds cannot give a {confidence:.0%} interval; need at least {min_rounds(confidence)}")
    if not (np.all(new > 0) and np.all(old > 0)):
        raise ValueError("times must be positive")
    logs = np.sort(np.log(new / old))
    k = order_statistic_rank(n, confidence)
    low, high = float(np.exp(logs[k - 1])), float(np.exp(logs[n - k]))
    ratio = float(np.exp(np.median(logs)))
    above = int(np.sum(logs > 0))
    ties = int(np.sum(logs == 0))
    p = float(binomtest(above, n - ties, 0.5).pvalue) if n > ties else 1.0
    verdict = NO_CHANGE
    if low > 1.0 and ratio >= threshold:
        verdict = SLOWER
    elif high < 1.0 and ratio <= 1.0 / threshold:
        verdict = FASTER
    return PairedComparison(verdict=verdict, ratio=ratio, ci_low=low, ci_high=high, p_value=p, rounds=n,
                            threshold=threshold, confidence=confidence, new_median_ms=float(np.median(new)),
                            old_median_ms=float(np.median(old)))
