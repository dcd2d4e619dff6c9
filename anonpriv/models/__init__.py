"""Utility and privacy models, built by registered name."""

from anonpriv.models import privacy, utility  # noqa: F401  (registers the factories)
from anonpriv.models import token_vit  # noqa: F401  (registers tubelet_vit_tiny)
from anonpriv.models.registry import (
    create_privacy_model,
    create_utility_model,
    list_privacy_models,
    list_utility_models,
    register_privacy_model,
    register_utility_model,
)

__all__ = [
    "create_privacy_model",
    "create_utility_model",
    "list_privacy_models",
    "list_utility_models",
    "register_privacy_model",
    "register_utility_model",
]
