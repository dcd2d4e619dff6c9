"""Data: dataset sources (synthetic built in, real videos from disk) and the shared DataModule."""

from anonpriv.data.datamodule import VideoPrivacyDataModule
from anonpriv.data.hmdb51 import HMDB51Source
from anonpriv.data.privacy_labels import PrivacyLabelError, PrivacyLabels, load_privacy_labels
from anonpriv.data.sources import ClipDataset, LabelSubset, SyntheticSource, VideoSource
from anonpriv.data.synthetic import ACTION_NAMES, PRIVACY_ATTRIBUTES, SyntheticClipGenerator
from anonpriv.data.ucf101 import UCF101Source
from anonpriv.data.video_dataset import DatasetError, SkippedVideosWarning, VideoFolderSource
from anonpriv.data.video_io import VideoReadError

__all__ = [
    "ACTION_NAMES",
    "PRIVACY_ATTRIBUTES",
    "ClipDataset",
    "DatasetError",
    "HMDB51Source",
    "LabelSubset",
    "PrivacyLabelError",
    "PrivacyLabels",
    "SkippedVideosWarning",
    "SyntheticClipGenerator",
    "SyntheticSource",
    "UCF101Source",
    "VideoFolderSource",
    "VideoPrivacyDataModule",
    "VideoReadError",
    "VideoSource",
    "load_privacy_labels",
]
