"""Honest evaluation: fresh models on a frozen anonymizer's output, and the comparison tables."""

from anonpriv.evaluation.protocol import AttackerPanel, FrozenAnonymizer, ProtocolEvaluation, resolve_anonymizer

__all__ = ["AttackerPanel", "FrozenAnonymizer", "ProtocolEvaluation", "resolve_anonymizer"]
