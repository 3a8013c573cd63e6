"""Registry of the built-in segmentation models, and loading of user models.

``build_model`` takes a built-in name (``MODELS``) or a user spec ``package.module:function``;
every model it returns carries ``model.edgeprune_config``, a JSON-serializable dict describing
how it was built, for the checkpoint to record.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType

from torch import nn

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.pruning.models import deeplabv3plus, topformer


@dataclass(frozen=True)
class PublishedFigures:
    params_m: float  # millions of parameters
    gmacs: float  # GMACs at input_hw
    input_hw: tuple[int, int]
    num_classes: int
    source: str  # where the figure comes from (paper/table)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]  # called as factory(num_classes=...)
    num_classes: int
    input_hw: tuple[int, int]  # default deploy/eval resolution
    published: PublishedFigures | None
    description: str


_TOPFORMER_TABLE = "Zhang et al., TopFormer, CVPR 2022: ADE20K results; hustvl/TopFormer README"
_PRUNING_PAPER = "the pruning paper's unpruned model: TopFormer wider than Base, '4.1GMACs', 10.3M params"
_DEEPLAB_FIGURES = "DeepLabV3+ / MobileNetV2 baseline figure quoted by the pruning paper"


def _topformer_spec(
    name: str, config: topformer.TopFormerConfig, params_m: float, gmacs: float, source: str, description: str
) -> ModelSpec:
    """A TopFormer variant published at 512x512."""
    return ModelSpec(
        name=name,
        factory=partial(topformer.topformer, config),
        num_classes=config.num_classes,
        input_hw=(512, 512),
        published=PublishedFigures(params_m, gmacs, (512, 512), config.num_classes, source),
        description=description,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _topformer_spec("topformer-tiny", topformer.TINY, 1.4, 0.6, _TOPFORMER_TABLE, "TopFormer-Tiny, ADE20K"),
        _topformer_spec("topformer-small", topformer.SMALL, 3.1, 1.2, _TOPFORMER_TABLE, "TopFormer-Small, ADE20K"),
        _topformer_spec("topformer-base", topformer.BASE, 5.1, 1.8, _TOPFORMER_TABLE, "TopFormer-Base, ADE20K"),
        _topformer_spec(
            "topformer-supernet",
            topformer.SUPERNET,
            10.3,
            4.1,
            _PRUNING_PAPER,
            "TopFormer widened 1.5x from Base, the unpruned starting point for pruning",
        ),
        ModelSpec(
            name="deeplabv3plus-mbv2",
            factory=partial(deeplabv3plus.deeplabv3plus, deeplabv3plus.DEFAULT),
            num_classes=deeplabv3plus.DEFAULT.num_classes,
            input_hw=(512, 1024),
            published=PublishedFigures(2.26, 9.5, (512, 1024), 19, _DEEPLAB_FIGURES),
            description="DeepLabV3+ with a MobileNetV2 backbone, Cityscapes (19 classes)",
        ),
    )
}


def model_spec(name: str) -> ModelSpec | None:
    """The spec of a built-in model, or ``None`` for a user spec ``package.module:function``."""
    return MODELS.get(name)


def build_model(name: str, num_classes: int | None = None) -> nn.Module:
    """Build a built-in model by name, or a user model from ``package.module:function``.

    ``num_classes`` defaults to the built-in model's own; a user function gets it as the
    ``num_classes`` keyword if it accepts one, and is called without arguments otherwise.
    """
    spec = MODELS.get(name)
    if spec is not None:
        model = spec.factory(num_classes=num_classes)
        model.edgeprune_config = {"model": name, **model.edgeprune_config}
        return model
    if ":" not in name:
        known = ", ".join(MODELS)
        raise EdgepruneError(
            f"unknown model {name!r}: use one of {known}, or a user model as package.module:function"
        )
    return _build_user_model(name, num_classes)


def _build_user_model(spec: str, num_classes: int | None) -> nn.Module:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise EdgepruneError(f"bad model spec {spec!r}: expected package.module:function")
    module = _import_user_module(module_name, spec)
    function = getattr(module, function_name, None)
    if function is None:
        raise EdgepruneError(f"model spec {spec!r}: module {module_name!r} has no attribute {function_name!r}")
    if not callable(function):
        raise EdgepruneError(f"model spec {spec!r}: {function_name!r} is not callable")
    pass_classes = num_classes is not None and _accepts_num_classes(function)
    kwargs = {"num_classes": num_classes} if pass_classes else {}
    model = function(**kwargs)
    if not isinstance(model, nn.Module):
        raise EdgepruneError(f"model spec {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    model.edgeprune_config = {"model": spec, "num_classes": kwargs.get("num_classes")}
    return model


def _import_user_module(module_name: str, spec: str) -> ModuleType:
    """Import ``module_name``, also looking in the current directory (as ``python -m`` would)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # any failure inside the user's module is an input problem
        raise EdgepruneError(
            f"model spec {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: "
            f"{first_line(exc) if str(exc).strip() else ''}"
        ) from exc
    finally:
        if added:
            sys.path.remove(cwd)


def _accepts_num_classes(function: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "num_classes" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in parameters
    )
