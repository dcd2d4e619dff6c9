"""blur and downsample: a fixed Gaussian blur, or an area downsampling, of every frame.

``method`` holds :class:`BlurBaseline` and :class:`DownsampleBaseline` (LightningModules), ``anonymizer``
their :class:`GaussianBlur` and :class:`DownUpSample` with torch alone; the names here are imported on
first use (PEP 562), so importing ``anonymizer`` directly does not import Lightning.
"""

from anonpriv.lazy_exports import lazy_exports

_EXPORTS = {"BlurBaseline": "method", "DownsampleBaseline": "method", "DownUpSample": "anonymizer",
            "GaussianBlur": "anonymizer"}  # public name -> the submodule that defines it
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
