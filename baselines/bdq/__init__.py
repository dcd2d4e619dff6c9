"""BDQ (Kumawat & Nagahara, ECCV 2022): learnable Blur -> Difference -> Quantization.

:class:`BDQBaseline` (``method``) trains the encoder :class:`BDQEncoder` (``anonymizer``, torch alone)
against the privacy model. Both are imported on first use (PEP 562).
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"BDQBaseline": "method", "BDQEncoder": "anonymizer"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
