"""Data: dataset sources (synthetic built in, real videos from disk) and the shared DataModule.

The names below are imported on first use (PEP 562), so that ``import anonpriv.data.video_io``
(all that ``anonpriv anonymize`` needs) does not import the DataModule and, through it, Lightning.
"""

from __future__ import annotations

from anonpriv.lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "VideoPrivacyDataModule": "datamodule",
    "HMDB51Source": "hmdb51",
    "PAHMDB51Source": "hmdb51",
    "PrivacyLabelError": "privacy_labels",
    "PrivacyLabels": "privacy_labels",
    "load_privacy_labels": "privacy_labels",
    "ClipDataset": "sources",
    "LabelSubset": "sources",
    "SyntheticSource": "sources",
    "VideoSource": "sources",
    "ACTION_NAMES": "synthetic",
    "PRIVACY_ATTRIBUTES": "synthetic",
    "SyntheticClipGenerator": "synthetic",
    "UCF101Source": "ucf101",
    "VideoClipDataset": "video_dataset",
    "VideoFolderSource": "video_dataset",
    "DatasetError": "video_index",
    "SkippedVideosWarning": "video_index",
    "VideoIndex": "video_index",
    "VideoReadError": "video_io",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
