"""Anonymization methods built on the common base; the headline token-pruning method lives here.

The names below are imported on first use (PEP 562): the base class imports Lightning, which
``anonpriv.methods.registry`` (the method table) does not need until a method is built.
"""

from __future__ import annotations

import importlib

# Public name -> the submodule that defines it.
_EXPORTS = {
    "AnonymizationMethod": "base",
    "LossTerms": "base",
    "Phase": "base",
    "binary_entropy_from_logits": "base",
    "ANONYMIZERS": "registry",
    "METHODS": "registry",
    "MethodAnonymizer": "registry",
    "build_anonymizer": "registry",
    "build_method": "registry",
    "load_checkpoint_anonymizer": "registry",
    "load_method": "registry",
    "method_class": "registry",
    "read_checkpoint": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The first name asked for imports every submodule above, as the eager package did (so that,
    # e.g., jsonargparse knows every subclass); importing one submodule directly stays light.
    for export, module in _EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(f"{__name__}.{module}"), export)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
