"""Baselines, each a method on :class:`anonpriv.methods.AnonymizationMethod`."""

from baselines.bdq import BDQBaseline
from baselines.blur import BlurBaseline, DownsampleBaseline
from baselines.raw import RawBaseline
from baselines.spact import SPActBaseline

__all__ = ["BDQBaseline", "BlurBaseline", "DownsampleBaseline", "RawBaseline", "SPActBaseline"]
