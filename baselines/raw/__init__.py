"""raw: the identity anonymizer, every table's reference. Its ``f_A`` is ``torch.nn.Identity``, so the
folder has no ``anonymizer`` module; :class:`RawBaseline` (``method``) is imported on first use (PEP 562).
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"RawBaseline": "method"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
