"""blackening: the actors (persons) of every frame blacked out.

:class:`BlackeningBaseline` (``method``) is a LightningModule; :class:`Blackening` (``anonymizer``), with
its person detectors, needs torch alone. Both are imported on first use (PEP 562).
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"BlackeningBaseline": "method", "Blackening": "anonymizer"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
