"""Honest evaluation: fresh models on a frozen anonymizer's output, and the comparison tables.

The names below are imported on first use (PEP 562), so that ``anonpriv.evaluation.tables`` (the tables
and plots, which need neither torch nor Lightning) stays light: ``anonpriv sweep --report-only``.
"""

from __future__ import annotations

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {
    "AttackerPanel": "protocol",
    "FrozenAnonymizer": "protocol",
    "ProtocolEvaluation": "protocol",
    "resolve_anonymizer": "protocol",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
