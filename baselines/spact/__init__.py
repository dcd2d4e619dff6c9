"""SPAct (Dave et al., CVPR 2022): a per-frame UNet against a self-supervised privacy branch.

:class:`SPActBaseline` (``method``) trains :class:`FrameUNet`, a :class:`UNet` per frame (``anonymizer``,
torch alone). The names are imported on first use (PEP 562).
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"SPActBaseline": "method", "FrameUNet": "anonymizer", "UNet": "anonymizer"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
