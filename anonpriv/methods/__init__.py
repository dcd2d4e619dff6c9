"""Anonymization methods built on the common base; the headline token-pruning method lives here."""

from anonpriv.methods.base import AnonymizationMethod, LossTerms, Phase, binary_entropy_from_logits

__all__ = ["AnonymizationMethod", "LossTerms", "Phase", "binary_entropy_from_logits"]
