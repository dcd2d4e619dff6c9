"""Baselines, each a method on :class:`anonpriv.methods.AnonymizationMethod`.

The classes are imported on first use (PEP 562), so building one baseline (``baselines.blur``)
does not import the others' modules.
"""

from __future__ import annotations

from anonpriv.lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "BDQBaseline": "bdq",
    "BlackeningBaseline": "blackening",
    "BlurBaseline": "blur",
    "DownsampleBaseline": "blur",
    "RawBaseline": "raw",
    "SPActBaseline": "spact",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
