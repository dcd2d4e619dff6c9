"""Dual-CLS tubelet pruning (Aslam et al., CVPR 2026): scoring, the ViT, the method, visualisation.

The names below are imported on first use (PEP 562): the method is a LightningModule, while the
anonymizer (:mod:`~anonpriv.methods.token_pruning.anonymizer`) and the ViT
(:mod:`~anonpriv.methods.token_pruning.model`) need torch alone, and importing one of those
submodules directly does not import Lightning.
"""

from __future__ import annotations

import importlib

# Public name -> the submodule that defines it.
_EXPORTS = {
    "DualCLSTubeletViT": "model",
    "PruningOutput": "model",
    "TokenPruningAnonymizer": "anonymizer",
    "TokenPruningMethod": "method",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The first name asked for imports every submodule above, as the eager package did; importing
    # one submodule directly stays light.
    for export, module in _EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(f"{__name__}.{module}"), export)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
