"""Does a trained anonymizer accept the clips it is about to be evaluated on?

A checkpoint remembers the clip size it was trained on (``clip_shape``, ``[T, H, W]``). Evaluated on
another dataset (the cross-dataset Table 2) the clips may differ: convolutional anonymizers (BDQ, SPAct)
take any size, a ViT with position embeddings for one tubelet grid (token pruning) takes only its own.
:func:`check_accepts_clips` runs the anonymizer once on an empty clip of the new size when the sizes
differ, before any fresh model is built or trained, and turns a refusal into one line naming both
shapes and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(str(int(s)) for s in shape)


def check_accepts_clips(method, clip_shape: Sequence[int] | None, source: str, channels: int = 3) -> None:
    """Raise ``ValueError`` (one line) if ``method``'s anonymizer, trained on clips of its own
    ``clip_shape``, cannot anonymize clips of ``clip_shape`` (``[T, H, W]``, the data's)."""
    trained = getattr(method, "clip_shape", None)
    if clip_shape is None or trained is None or list(trained) == list(clip_shape):
        return
    probe = torch.zeros(1, channels, *[int(s) for s in clip_shape])
    try:
        with torch.no_grad():
            method.anonymize(probe)
    except Exception as error:  # whatever the anonymizer raises on the wrong size
        reason = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise ValueError(
            f"the anonymizer {source} was trained on clips of {_shape(trained)} (frames x height x width) and does not "
            f"accept this data's clips of {_shape(clip_shape)} ({reason}): give the data the anonymizer's clip size "
            "(data.source.init_args.num_frames / height / width) or train the anonymizer on clips of this size."
        ) from None
