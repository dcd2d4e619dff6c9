"""Class paths that checkpoints and configs written earlier may name, mapped to where the class is now.

A checkpoint records its method's class path (``anonpriv_method``: where the class is defined, and
LightningCLI's ``_class_path``: the config's spelling), and configs name classes by path too. The
baselines were once a top-level package ``baselines`` and are now ``anonpriv.baselines``, one folder
per baseline; every path the old layout had for a method, or for an anonymizer the method table
named, is listed here. :func:`current_class_path` is applied wherever a stored class path is
resolved (:mod:`anonpriv.methods.catalog`, :mod:`anonpriv.methods.registry`). Torch-free.
"""

from __future__ import annotations

#: Old class path -> the same class's path now (the catalog's spelling for a method).
MOVED_CLASS_PATHS: dict[str, str] = {
    # the methods, by the old package's exports and by their defining modules
    "baselines.RawBaseline": "anonpriv.baselines.raw.RawBaseline",
    "baselines.raw.RawBaseline": "anonpriv.baselines.raw.RawBaseline",
    "baselines.BlurBaseline": "anonpriv.baselines.blur.BlurBaseline",
    "baselines.blur.BlurBaseline": "anonpriv.baselines.blur.BlurBaseline",
    "baselines.DownsampleBaseline": "anonpriv.baselines.blur.DownsampleBaseline",
    "baselines.blur.DownsampleBaseline": "anonpriv.baselines.blur.DownsampleBaseline",
    "baselines.BlackeningBaseline": "anonpriv.baselines.blackening.BlackeningBaseline",
    "baselines.blackening.BlackeningBaseline": "anonpriv.baselines.blackening.BlackeningBaseline",
    "baselines.face_blur.FaceBlurBaseline": "anonpriv.baselines.face_blur.FaceBlurBaseline",
    "baselines.BDQBaseline": "anonpriv.baselines.bdq.BDQBaseline",
    "baselines.bdq.BDQBaseline": "anonpriv.baselines.bdq.BDQBaseline",
    "baselines.SPActBaseline": "anonpriv.baselines.spact.SPActBaseline",
    "baselines.spact.SPActBaseline": "anonpriv.baselines.spact.SPActBaseline",
    # the anonymizers, by the torch-only modules that built them
    "baselines.blur_anonymizer.GaussianBlur": "anonpriv.baselines.blur.anonymizer.GaussianBlur",
    "baselines.blur_anonymizer.DownUpSample": "anonpriv.baselines.blur.anonymizer.DownUpSample",
    "baselines.blackening_anonymizer.Blackening": "anonpriv.baselines.blackening.anonymizer.Blackening",
    "baselines.face_blur_anonymizer.FaceBlur": "anonpriv.baselines.face_blur.anonymizer.FaceBlur",
    "baselines.bdq_anonymizer.bdq_anonymizer": "anonpriv.baselines.bdq.anonymizer.bdq_anonymizer",
    "baselines.bdq_anonymizer.BDQEncoder": "anonpriv.baselines.bdq.anonymizer.BDQEncoder",
    "baselines.spact_anonymizer.spact_anonymizer": "anonpriv.baselines.spact.anonymizer.spact_anonymizer",
    "baselines.spact_anonymizer.FrameUNet": "anonpriv.baselines.spact.anonymizer.FrameUNet",
}


def current_class_path(class_path: str) -> str:
    """``class_path`` as it is spelled now: moved ones mapped (:data:`MOVED_CLASS_PATHS`), any other as given."""
    return MOVED_CLASS_PATHS.get(class_path, class_path)
