"""raw: the identity anonymizer. Upper bound on utility and on leakage; every table's reference."""

from __future__ import annotations

from torch import nn

from anonpriv.methods.base import AnonymizationMethod


class RawBaseline(AnonymizationMethod):
    """No anonymization: the utility and privacy models are trained on the raw clips."""

    def __init__(self, **kwargs) -> None:
        super().__init__(anonymizer=nn.Identity(), **kwargs)
