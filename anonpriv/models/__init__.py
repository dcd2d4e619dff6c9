"""Utility and privacy models, built by registered name.

The built-in models register themselves when their modules are imported, which the registry does
on the first ``create_*`` / ``list_*`` call; importing this package (or ``anonpriv.models.weights``)
imports neither timm nor the models.
"""

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
