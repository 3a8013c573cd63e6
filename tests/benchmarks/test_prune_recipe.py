"""The recipe sweep's points: defaults left unset, so the default point is the ablation's run."""

from benchmarks.prune_recipe import DEFAULT_POINT, KNOBS, settings_for


def test_the_default_point_sets_nothing_and_each_knob_moves_one_field():
    assert settings_for(DEFAULT_POINT, train_lr=0.1) == {}
    assert settings_for({**DEFAULT_POINT, "lr_fraction": 1.0}, train_lr=0.1) == {"lr": 0.1}
    assert settings_for({**DEFAULT_POINT, "rho": 3.0}, train_lr=0.1) == {"rho": 3.0}
    assert all(DEFAULT_POINT[knob] in values for knob, values in KNOBS.items())
