import pytest

from edgeprune.device.stats import summarize


def test_statistics_of_hand_made_timings():
    stats = summarize([4.0, 1.0, 3.0, 2.0, 10.0], first_ms=20.0)
    assert stats.first_ms == 20.0 and stats.runs == 5
    assert stats.median_ms == 3.0 and stats.mean_ms == 4.0
    assert stats.min_ms == 1.0 and stats.max_ms == 10.0
    assert stats.std_ms == pytest.approx(3.5355339, rel=1e-6)  # sample std of 1,2,3,4,10
    assert stats.p90_ms == pytest.approx(7.6)  # linear interpolation between 4 and 10
    assert stats.p95_ms == pytest.approx(8.8)
    assert stats.fps == pytest.approx(1000 / 3)
    assert stats.timings_ms == (4.0, 1.0, 3.0, 2.0, 10.0)


def test_no_runs_is_an_error():
    with pytest.raises(ValueError):
        summarize([], first_ms=1.0)
