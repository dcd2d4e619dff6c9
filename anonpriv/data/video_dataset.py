"""Real video datasets: the shared base of the UCF101 and HMDB51 sources and their clip dataset.

A :class:`VideoFolderSource` subclass only says how to read its split files
(:meth:`~VideoFolderSource.read_split_lists`). The base finds the dataset's folders under ``root``,
loads the privacy labels, carves the validation split, and builds the
:class:`~anonpriv.data.video_index.VideoIndex`: every listed video found on disk, labelled and
probed, and every problem (missing, unreadable, unlabelled video, unknown label entry) raised or,
with ``on_error="skip"``, left out and reported (see :mod:`anonpriv.data.video_index`). All of it
happens at construction, before any clip is decoded.

A split's :class:`VideoClipDataset` is the index's videos of that split, a clip sampler
(:mod:`anonpriv.data.clip_sampling`: which frames) and a clip transform
(:mod:`anonpriv.data.clip_transforms`: which crop, which flip). The source's defaults:

* train: one clip per video at a random start, random resized crop (``train_crop_scale``), flip;
* val and test: ``val_clips`` / ``test_clips`` evenly spaced clips per video, centre crop (``test_crop``).

Either can be replaced: ``source.dataset(split, clip_sampler=..., transform=...)``, or a subclass
overriding :meth:`~VideoFolderSource.clip_sampler` / :meth:`~VideoFolderSource.clip_transform`.

At decode time (in DataLoader workers too) a file that fails raises
:class:`~anonpriv.data.video_io.VideoReadError` naming it: never a hang, never another video in its place.

Splits: ``test`` is the official test list of the chosen split and is used for nothing else.
Neither UCF101 nor HMDB51 has a validation split, so ``val`` is carved out of the training list:
about ``val_fraction`` of its videos, whole groups at a time (:meth:`VideoFolderSource.group_of`:
UCF101's ``gXX``, HMDB51's source video), so that clips of one person or one film never sit on both
sides. The groups are ordered by a hash of their name, so the cut is the same on every run and
machine and does not depend on which videos a run skips.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from anonpriv.data.clip_sampling import ClipSampler, EvenlySpacedClipSampler, RandomClipSampler
from anonpriv.data.clip_transforms import CenterCrop, ClipTransform, RandomCropFlip
from anonpriv.data.privacy_labels import PrivacyLabels, load_privacy_labels, video_key
from anonpriv.data.sources import ClipDataset, VideoSource
from anonpriv.data.video_index import (
    VideoFinder,
    VideoIndex,
    VideoRecord,
    carve_validation,
    default_label_file,
    load_exclusions,
)
from anonpriv.data.video_io import VideoReadError, read_frames


@dataclasses.dataclass(frozen=True)
class ClipSettings:
    """How clips are cut from a video and sized (see :class:`VideoFolderSource`)."""

    num_frames: int
    height: int
    width: int
    frame_stride: int
    test_crop: float
    train_crop_scale: tuple[float, float]


class VideoClipDataset(ClipDataset):
    """Clips decoded from the videos ``records``.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``: ``clip_sampler``
    (:class:`~anonpriv.data.clip_sampling.ClipSampler`) picks its frames, ``transform``
    (:class:`~anonpriv.data.clip_transforms.ClipTransform`) turns the decoded frames into the clip.
    Every clip of a video carries the video's id and labels, so the metrics can average their
    predictions per video.
    """

    def __init__(self, records: list[VideoRecord], clip_sampler: ClipSampler, transform: ClipTransform) -> None:
        self.records = records
        self.clip_sampler = clip_sampler
        self.transform = transform
        self.num_clips = clip_sampler.clips_per_video
        self._actions = np.repeat(np.array([r.action for r in records], dtype=np.int64), self.num_clips)
        privacy = np.stack([r.privacy for r in records]).astype(np.float32) if records else np.zeros((0, 0), np.float32)
        self._privacy = np.repeat(privacy, self.num_clips, axis=0)

    def __len__(self) -> int:
        return len(self.records) * self.num_clips

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return self._actions, self._privacy

    def frame_indices(self, index: int) -> np.ndarray:
        """Frame indices of item ``index`` (drawn anew on each call by a random sampler)."""
        record = self.records[index // self.num_clips]
        return self.clip_sampler(record.num_frames, index % self.num_clips)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        record = self.records[index // self.num_clips]
        frames = read_frames_of(record, self.frame_indices(index))
        return {
            "video": self.transform(frames),
            "action": torch.tensor(record.action, dtype=torch.int64),
            "privacy": torch.from_numpy(record.privacy.astype(np.float32)),
            "id": record.video_id,
        }


def read_frames_of(record: VideoRecord, indices: np.ndarray) -> np.ndarray:
    """Decode ``indices`` of ``record``'s file; errors name the file and the video id."""
    try:
        return read_frames(record.path, indices, expected_frames=record.num_frames)
    except VideoReadError as error:
        raise VideoReadError(f"video {record.video_id}: {error}") from error


class VideoFolderSource(VideoSource, abc.ABC):
    """Base of sources whose videos live under ``root`` and are listed in split files.

    Args:
        root: dataset folder (what goes there: see the subclass).
        split: which official train/test split (1, 2 or 3).
        num_frames, height, width: size of every clip served.
        frame_stride: take every ``frame_stride``-th frame (the "skip" of the papers).
        test_clips: evenly spaced clips per test video; their predictions are averaged per video.
        val_clips: the same for validation.
        val_fraction: share of the training list held out as the validation split, whole groups at
            a time (see :meth:`group_of`); the test list is never used for validation.
        test_crop: evaluation centre crop, as a fraction of the largest box with the clip's aspect.
        train_crop_scale: area range of the training random resized crop.
        privacy_labels: label file (CSV, JSON, PA-HMDB51 JSON or folder, VP pickle; see
            :mod:`anonpriv.data.privacy_labels`). Default: ``<root>/privacy_labels.csv`` or ``.json``.
        attributes: keep and order these attributes of the label file (all by default; required
            to name the columns of a pickle).
        label_min_fraction: PA-HMDB51 frame-range rule (0: an attribute seen in any frame is present).
        exclude_videos: a label file or a text file of video names (one per line) whose videos are
            left out of every split, e.g. the PA-HMDB51 videos when training on the rest of HMDB51.
        on_error: ``raise`` (default) or ``skip``: what missing, unreadable or unlabelled videos and
            unknown label entries do (see the module docstring).
        videos_dir: folder of the ``<Class>/<video>`` files, relative to ``root`` (found by default).
        splits_dir: folder of the split files, relative to ``root`` (found by default).
    """

    dataset_name = "video"
    #: Sub-folders of ``root`` tried, in order, for the videos and for the split files.
    video_dir_candidates: tuple[str, ...] = (".",)
    split_dir_candidates: tuple[str, ...] = (".",)

    def __init__(
        self,
        root: str,
        split: int = 1,
        num_frames: int = 16,
        height: int = 112,
        width: int = 112,
        frame_stride: int = 2,
        test_clips: int = 5,
        val_clips: int = 1,
        val_fraction: float = 0.1,
        test_crop: float = 0.8,
        train_crop_scale: tuple[float, float] = (0.6, 1.0),
        privacy_labels: str | None = None,
        attributes: list[str] | None = None,
        label_min_fraction: float = 0.0,
        exclude_videos: str | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        videos_dir: str | None = None,
        splits_dir: str | None = None,
    ) -> None:
        self._check_options(split, on_error, val_fraction, train_crop_scale, test_crop, num_frames=num_frames,
                            height=height, width=width, frame_stride=frame_stride, test_clips=test_clips,
                            val_clips=val_clips)
        self.root = self._check_root(root)
        self.split, self.on_error, self.val_fraction = split, on_error, val_fraction
        self.test_clips, self.val_clips = test_clips, val_clips
        self.settings = ClipSettings(num_frames, height, width, frame_stride, test_crop, tuple(train_crop_scale))
        self._videos_dir = self._find_dir("videos_dir", videos_dir, self.video_dir_candidates, self.looks_like_videos_dir)
        self._splits_dir = self._find_dir("splits_dir", splits_dir, self.split_dir_candidates, self.looks_like_splits_dir)
        self.index = self._build_index(privacy_labels, attributes, label_min_fraction, exclude_videos)
        self.index.report(f"{self.dataset_name} split {split} under {self.root}", on_error)

    # -- what subclasses provide --------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def expected_layout(cls) -> str:
        """A sentence on what ``root`` must contain (used in error messages)."""

    @abc.abstractmethod
    def read_split_lists(self) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        """``(action names, {"train": [(video path relative to the video folder, action)], "test": [...]},
        every video any split file of this split lists (also unused ones))``."""

    @abc.abstractmethod
    def looks_like_splits_dir(self, folder: Path) -> bool:
        """Whether ``folder`` holds this dataset's split files."""

    def group_of(self, relative: str) -> str:
        """The group of listed video ``Class/name.avi``: videos of one group are never split between
        train and val. Default: every video is its own group; subclasses group by person or source."""
        return video_key(relative)

    def labels_by_split(self, labels: PrivacyLabels) -> dict[str, PrivacyLabels]:
        """The label file each split reads (default: ``labels`` for train, val and test)."""
        return {"train": labels, "val": labels, "test": labels}

    def looks_like_videos_dir(self, folder: Path) -> bool:
        """Whether ``folder`` holds class folders (any sub-folder will do)."""
        return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())

    def videos_dir(self) -> Path:
        """The folder holding ``<Class>/<video>`` files."""
        return self._videos_dir

    def splits_dir(self) -> Path:
        """The folder holding the split files."""
        return self._splits_dir

    def _find_dir(self, option: str, given: str | None, candidates: tuple[str, ...], accept) -> Path:
        if given is not None:
            folder = self.root / given
            if not folder.is_dir() or not accept(folder):
                raise FileNotFoundError(
                    f"{option}={given!r}: {str(folder)!r} is not a folder holding {self.expected_layout()}."
                )
            return folder
        for candidate in candidates:
            folder = self.root / candidate
            if folder.is_dir() and accept(folder):
                return folder
        tried = ", ".join(str(self.root / c) for c in candidates)
        raise FileNotFoundError(
            f"{self.dataset_name}: no {option.replace('_dir', '')} folder found (looked in {tried}). root must hold "
            f"{self.expected_layout()}; or set {option} to the sub-folder that does."
        )

    # -- VideoSource -----------------------------------------------------------------------------
    @property
    def action_names(self) -> list[str]:
        return list(self._action_names)

    @property
    def privacy_names(self) -> list[str]:
        return list(self._privacy_names)

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        s = self.settings
        return (s.num_frames, s.height, s.width)

    @property
    def skipped(self) -> dict[str, list[str]]:
        """Every video left out with ``on_error="skip"``, by problem kind (see :mod:`anonpriv.data.video_index`)."""
        return self.index.skipped

    @property
    def excluded(self) -> list[str]:
        """Ids of the videos ``exclude_videos`` left out."""
        return self.index.excluded

    def records(self, split: str) -> list[VideoRecord]:
        """The videos of ``train``, ``val`` (carved from the training list) or ``test``."""
        if split not in self.index.records:
            raise ValueError(f"unknown split {split!r}: use 'train', 'val' or 'test'.")
        return list(self.index.records[split])

    def clip_sampler(self, split: str) -> ClipSampler:
        """Which frames the clips of ``split`` take: one random clip per training video, ``val_clips`` /
        ``test_clips`` evenly spaced ones per evaluation video."""
        s = self.settings
        if split == "train":
            return RandomClipSampler(s.num_frames, s.frame_stride)
        return EvenlySpacedClipSampler(s.num_frames, s.frame_stride, self.val_clips if split == "val" else self.test_clips)

    def clip_transform(self, split: str) -> ClipTransform:
        """How ``split``'s frames become clips: random resized crop and flip for training, centre crop otherwise."""
        s = self.settings
        if split == "train":
            return RandomCropFlip(s.height, s.width, s.train_crop_scale)
        return CenterCrop(s.height, s.width, s.test_crop)

    def dataset(self, split: str, clip_sampler: ClipSampler | None = None,
                transform: ClipTransform | None = None) -> VideoClipDataset:
        """The clips of ``split``, with the source's :meth:`clip_sampler` and :meth:`clip_transform`
        unless others are given."""
        records = self.records(split)
        if clip_sampler is None:
            clip_sampler = self.clip_sampler(split)
        if transform is None:
            transform = self.clip_transform(split)
        return VideoClipDataset(records, clip_sampler, transform)

    # -- construction steps ------------------------------------------------------------------------
    def _check_options(self, split: int, on_error: str, val_fraction: float, train_crop_scale: tuple[float, float],
                       test_crop: float, **counts: int) -> None:
        if split not in (1, 2, 3):
            raise ValueError(f"split={split}: {self.dataset_name} has official splits 1, 2 and 3.")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error={on_error!r}: use 'raise' or 'skip'.")
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name}={value} must be at least 1.")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction={val_fraction} must be in (0, 1): the share of the training list kept "
                             "for validation (0.1 is usual).")
        low, high = train_crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"train_crop_scale={train_crop_scale} must satisfy 0 < low <= high <= 1.")
        if not 0 < test_crop <= 1:
            raise ValueError(f"test_crop={test_crop} must be in (0, 1].")

    def _check_root(self, root: str) -> Path:
        if str(root).strip() in ("", "???"):
            raise ValueError(
                f"{self.dataset_name} root is not set: pass --data.source.init_args.root /path/to/dataset "
                f"(the folder that holds {self.expected_layout()})."
            )
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{self.dataset_name} root {str(folder)!r} does not exist: point root at the folder that holds "
                f"{self.expected_layout()}."
            )
        return folder

    def _build_index(self, privacy_labels: str | None, attributes: list[str] | None, label_min_fraction: float,
                     exclude_videos: str | None) -> VideoIndex:
        """Read the split lists and labels, carve val out of train, and index every listed video."""
        self._action_names, listed, all_listed = self.read_split_lists()
        label_file = default_label_file(self.root) if privacy_labels is None else privacy_labels
        labels = load_privacy_labels(label_file, attributes, label_min_fraction)
        self._privacy_names = labels.attributes
        split_labels = self.labels_by_split(labels)
        excluded_keys = load_exclusions(exclude_videos)
        train, val = carve_validation(listed["train"], self.group_of, self.val_fraction,
                                      where=f"{self.dataset_name} split {self.split}")
        listed = {**listed, "train": train, "val": val}
        return VideoIndex.build(listed, split_labels, VideoFinder(self.videos_dir()), all_listed, excluded_keys,
                                name=self.dataset_name)
