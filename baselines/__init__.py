"""Baselines, each a method on :class:`anonpriv.methods.AnonymizationMethod`."""

from baselines.raw import RawBaseline

__all__ = ["RawBaseline"]
