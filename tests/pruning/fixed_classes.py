"""A user model that ignores num_classes: always predicts 3 channels."""

from torch import nn


def build() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
