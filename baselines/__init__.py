"""Baselines, each a method on :class:`anonpriv.methods.AnonymizationMethod`.

The classes are imported on first use (PEP 562), so building one baseline (``baselines.blur``)
does not import the others' modules.
"""

from __future__ import annotations

import importlib

# Public name -> the submodule that defines it.
_EXPORTS = {
    "BDQBaseline": "bdq",
    "BlurBaseline": "blur",
    "DownsampleBaseline": "blur",
    "RawBaseline": "raw",
    "SPActBaseline": "spact",
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
