"""The A/B decision on paired rounds, on constructed timings: equal, 10% slower, heavy-tailed load."""

import numpy as np
import pytest
from scipy.stats import binom

from edgeprune.device.paired import min_rounds, order_statistic_rank, paired_compare
from edgeprune.device.regression import FASTER, NO_CHANGE, SLOWER

ROUNDS = 40


def rounds(seed: int, slowdown: float = 1.0, burst_rate: float = 0.0, n: int = ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Per-round times of OLD and NEW = OLD x ``slowdown``, under a load both halves of a round share.

    Each round's load level (a drifting multiplier) hits both; each half also gets its own
    small jitter, and with ``burst_rate`` a half is hit alone by a burst of 1.5-4x (another
    process taking the core), which is what makes a shared machine's timings heavy-tailed.
    """
    rng = np.random.default_rng(seed)
    load = np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # slow drift, up to tens of percent
    old = 2.0 * load * rng.lognormal(0, 0.01, n)
    new = 2.0 * slowdown * load * rng.lognormal(0, 0.01, n)
    for times in (old, new):
        burst = rng.random(n) < burst_rate
        times[burst] *= rng.uniform(1.5, 4.0, burst.sum())
    return new, old


def test_the_interval_has_the_coverage_the_binomial_gives():
    for n in (8, 9, 20, 40, 41, 100):
        k = order_statistic_rank(n, 0.99)
        assert k >= 1 and 1 - 2 * binom.cdf(k - 1, n, 0.5) >= 0.99  # coverage reached
        assert 1 - 2 * binom.cdf(k, n, 0.5) < 0.99  # and k is the tightest that reaches it
    assert min_rounds() == 8 and order_statistic_rank(8, 0.99) == 1


def test_equal_artifacts_are_no_change_and_the_interval_covers_one():
    for seed in range(200):
        c = paired_compare(*rounds(seed), threshold=1.05)
        assert c.verdict == NO_CHANGE and c.ci_low <= 1.0 <= c.ci_high * 1.001, (seed, c.describe())


def test_ten_percent_slower_is_flagged_with_an_interval_around_it():
    for seed in range(200):
        c = paired_compare(*rounds(seed, slowdown=1.10), threshold=1.05)
        assert c.verdict == SLOWER and c.ci_low > 1.0 and c.ci_low <= 1.10 <= c.ci_high * 1.001, (seed, c.describe())
        assert c.ratio == pytest.approx(1.10, rel=0.02)
    faster = paired_compare(*rounds(0, slowdown=1 / 1.10), threshold=1.05)
    assert faster.verdict == FASTER and "faster: 0.9" in faster.describe()


def test_heavy_tailed_load_neither_hides_a_slowdown_nor_invents_one():
    """A quarter of all halves hit by a 1.5-4x burst: the whole-run medians swing, the sign test does not."""
    same = [paired_compare(*rounds(seed, burst_rate=0.25), threshold=1.05) for seed in range(200)]
    assert sum(c.verdict != NO_CHANGE for c in same) == 0
    slow = [paired_compare(*rounds(seed, slowdown=1.10, burst_rate=0.25, n=60), threshold=1.05) for seed in range(200)]
    assert sum(c.verdict == SLOWER for c in slow) >= 190  # 60 rounds: what a burst-heavy machine costs


def test_a_real_but_small_change_is_no_change_at_the_threshold():
    new, old = rounds(5, slowdown=1.02, n=400)
    c = paired_compare(new, old, threshold=1.05)
    assert c.ci_low > 1.0 and c.verdict == NO_CHANGE  # significant, but below the minimum effect
    assert paired_compare(new, old, threshold=1.01).verdict == SLOWER


@pytest.mark.parametrize("new, old, message", [
    ([1.0] * 7, [1.0] * 7, "need at least 8"),
    ([1.0] * 8, [1.0] * 9, "one NEW and one OLD time per round"),
    ([1.0] * 7 + [0.0], [1.0] * 8, "positive"),
])
def test_bad_inputs_are_refused(new, old, message):
    with pytest.raises(ValueError, match=message):
        paired_compare(new, old, threshold=1.05)
    with pytest.raises(ValueError, match="threshold must be above 1"):
        paired_compare([1.0] * 8, [1.0] * 8, threshold=1.0)


def test_identical_rounds_are_no_change_with_p_one():
    c = paired_compare([2.0] * 10, [2.0] * 10, threshold=1.05)
    assert c.verdict == NO_CHANGE and c.ratio == 1.0 and c.p_value == 1.0
    assert c.to_json()["method"] == "sign-test confidence interval on the median per-round ratio"
