"""Small registries of model factories, timm style: ``@register_utility_model`` / ``create_*``.

Utility models map a clip (B, C, T, H, W) to action logits (B, num_classes). Privacy models map a
clip to attribute logits (B, num_attributes). Methods and the evaluation protocol build their
components by registered name, so configs and checkpoints only ever hold plain strings and dicts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from anonpriv.models.weights import WeightsDownloadError

# The modules that register the built-in models, imported on the first create/list rather than at
# package import, so anonymizing with a method loads none of them. (None imports timm or torchvision
# at module level either: those load when a model that needs them is built.)
_BUILTIN_MODULES = ("anonpriv.models.utility", "anonpriv.models.privacy", "anonpriv.models.token_vit")

_UTILITY: dict[str, Callable[..., nn.Module]] = {}
_PRIVACY: dict[str, Callable[..., nn.Module]] = {}


def register_utility_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _UTILITY[fn.__name__] = fn
    return fn


def register_privacy_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _PRIVACY[fn.__name__] = fn
    return fn


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def _create(table: dict, kind: str, name: str, num_outputs: int, kwargs: dict | None) -> nn.Module:
    _load_builtins()
    if name not in table:
        raise ValueError(f"unknown {kind} model {name!r}: registered ones are {sorted(table)}.")
    if num_outputs < 1:
        raise ValueError(f"a {kind} model needs at least one output, got {num_outputs}.")
    try:
        return table[name](num_outputs, **(kwargs or {}))
    except WeightsDownloadError as error:  # say which model's weights: the fix goes into its options
        raise WeightsDownloadError(f"{kind} model {name!r}: {error}") from error


def create_utility_model(name: str, num_classes: int, kwargs: dict | None = None) -> nn.Module:
    """Build the registered action model ``name`` with ``num_classes`` outputs."""
    return _create(_UTILITY, "utility", name, num_classes, kwargs)


def create_privacy_model(name: str, num_attributes: int, kwargs: dict | None = None) -> nn.Module:
    """Build the registered privacy model ``name`` with ``num_attributes`` outputs."""
    return _create(_PRIVACY, "privacy", name, num_attributes, kwargs)


def list_utility_models() -> list[str]:
    _load_builtins()
    return sorted(_UTILITY)


def list_privacy_models() -> list[str]:
    _load_builtins()
    return sorted(_PRIVACY)
