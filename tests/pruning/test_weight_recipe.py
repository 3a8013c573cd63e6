"""Pruning updates weights with the checkpoint's own recipe, at a fraction of its lr."""

from edgeprune.pruning.weight_recipe import DEFAULT_LR_FRACTION, weight_recipe


def test_lr_is_tied_to_the_checkpoints_training_lr_and_decay_kept():
    recipe = weight_recipe({"lr": 0.4, "weight_decay": 5e-4, "momentum": 0.8})
    assert recipe.lr == DEFAULT_LR_FRACTION * 0.4
    assert (recipe.weight_decay, recipe.momentum) == (5e-4, 0.8)
    assert "0.4" in recipe.source


def test_an_explicit_lr_wins_and_models_not_trained_here_get_the_training_defaults():
    assert weight_recipe({"lr": 0.4}, lr=0.003).lr == 0.003
    untrained = weight_recipe(None)
    assert untrained.lr == DEFAULT_LR_FRACTION * 0.01 and untrained.weight_decay == 1e-4
    assert "default" in untrained.source


def test_the_schedule_decays_to_zero_over_the_budget():
    recipe = weight_recipe({"lr": 0.1})
    assert recipe.lr_at(0, 100) == recipe.lr and recipe.lr_at(100, 100) == 0.0
    assert recipe.lr_at(50, 100) < recipe.lr
