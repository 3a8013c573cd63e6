"""User models for the registry tests (loaded as ``tests.pruning.models.user_model:<function>``)."""

from torch import nn


def build(num_classes: int = 4) -> nn.Module:
    return nn.Conv2d(3, num_classes, 1)


def build_fixed() -> nn.Module:
    return nn.Conv2d(3, 2, 1)


def not_a_module() -> int:
    return 42


NOT_CALLABLE = 7
