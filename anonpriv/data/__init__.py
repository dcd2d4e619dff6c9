"""Data: dataset sources (synthetic built in, real videos from disk) and the shared DataModule."""

from anonpriv.data.datamodule import VideoPrivacyDataModule
from anonpriv.data.sources import ClipDataset, LabelSubset, SyntheticSource, VideoSource
from anonpriv.data.synthetic import ACTION_NAMES, PRIVACY_ATTRIBUTES, SyntheticClipGenerator

__all__ = [
    "ACTION_NAMES",
    "PRIVACY_ATTRIBUTES",
    "ClipDataset",
    "LabelSubset",
    "SyntheticClipGenerator",
    "SyntheticSource",
    "VideoPrivacyDataModule",
    "VideoSource",
]
