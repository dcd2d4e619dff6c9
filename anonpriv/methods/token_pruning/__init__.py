"""Dual-CLS tubelet pruning (Aslam et al., CVPR 2026): scoring, the ViT, the method, visualisation.

The names below are imported on first use (PEP 562): the method is a LightningModule, while the
anonymizer (:mod:`~anonpriv.methods.token_pruning.anonymizer`) and the ViT
(:mod:`~anonpriv.methods.token_pruning.model`) need torch alone, and importing one of those
submodules directly does not import Lightning.
"""

from __future__ import annotations

from anonpriv.lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "DualCLSTubeletViT": "model",
    "PruningOutput": "model",
    "TokenPruningAnonymizer": "anonymizer",
    "TokenPruningMethod": "method",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
