"""Dual-CLS tubelet pruning (Aslam et al., CVPR 2026): scoring, the ViT, the method, visualisation."""

from anonpriv.methods.token_pruning.method import TokenPruningAnonymizer, TokenPruningMethod
from anonpriv.methods.token_pruning.model import DualCLSTubeletViT, PruningOutput

__all__ = ["DualCLSTubeletViT", "PruningOutput", "TokenPruningAnonymizer", "TokenPruningMethod"]
