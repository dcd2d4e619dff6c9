"""blur and downsample: fixed, training-free appearance degradations of every frame.

Both anonymizers have no parameters, so the base's ``anonymizer`` phase only trains the utility
model and the ``privacy_model`` phase trains the privacy model, each on the degraded clips. They are the
classic "hide identity by removing detail" baselines (StrongBlur and Downsample-2x/4x in the
literature, which apply them to person boxes; here they apply to the whole frame).

The anonymizers themselves (:class:`GaussianBlur`, :class:`DownUpSample`, :func:`gaussian_blur`)
live in :mod:`anonpriv.baselines.blur.anonymizer`, which needs torch alone.
"""

from __future__ import annotations

from typing import Literal

from anonpriv.methods.base import AnonymizationMethod

from anonpriv.baselines.blur.anonymizer import DownUpSample, GaussianBlur


class BlurBaseline(AnonymizationMethod):
    """Gaussian blur of the whole frame (no training of the anonymizer).

    Args:
        kernel_size: odd kernel size; the papers' StrongBlur uses 13 on person boxes.
        sigma: Gaussian standard deviation in pixels (papers: 10); 0 is the identity.
        relative_sigma: the standard deviation as a fraction of the frame height instead (see
            :class:`GaussianBlur`; ``anonpriv anonymize`` uses it on footage).
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`).
    """

    def __init__(self, kernel_size: int = 13, sigma: float = 10.0, relative_sigma: float | None = None,
                 **kwargs) -> None:
        super().__init__(anonymizer=GaussianBlur(kernel_size, sigma, relative_sigma), **kwargs)


class DownsampleBaseline(AnonymizationMethod):
    """Spatial down-then-up sampling of every frame (no training of the anonymizer).

    Args:
        factor: down-sampling factor (>= 1); the literature reports x2 and x4.
        down_mode, up_mode: interpolation modes, see :class:`DownUpSample`.
        target_height: down-sample every frame to this height instead (see :class:`DownUpSample`).
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`).
    """

    def __init__(
        self,
        factor: float = 2.0,
        down_mode: Literal["area", "nearest"] = "area",
        up_mode: Literal["nearest", "bilinear"] = "nearest",
        target_height: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(anonymizer=DownUpSample(factor, down_mode, up_mode, target_height), **kwargs)
