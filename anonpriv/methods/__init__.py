"""Anonymization methods built on the common base; the headline token-pruning method lives here."""

from anonpriv.methods.base import AnonymizationMethod, LossTerms, Phase, binary_entropy_from_logits
from anonpriv.methods.registry import METHODS, build_method, load_method, method_class

__all__ = [
    "METHODS",
    "AnonymizationMethod",
    "LossTerms",
    "Phase",
    "binary_entropy_from_logits",
    "build_method",
    "load_method",
    "method_class",
]
