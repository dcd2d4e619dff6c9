"""Anonymization methods built on the common base; the headline token-pruning method lives here.

The names below are imported on first use (PEP 562): the base class imports Lightning, which
``anonpriv.methods.catalog`` (the method table, torch-free) and ``anonpriv.methods.registry``
(building and loading methods) do not need until a method is built.
"""

from __future__ import annotations

from anonpriv.lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "AnonymizationMethod": "base",
    "LossTerms": "base",
    "Phase": "base",
    "binary_entropy_from_logits": "base",
    "CATALOG": "catalog",
    "MethodSpec": "catalog",
    "MethodAnonymizer": "registry",
    "build_anonymizer": "registry",
    "build_method": "registry",
    "load_checkpoint_anonymizer": "registry",
    "load_method": "registry",
    "method_class": "registry",
    "read_checkpoint": "registry",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
