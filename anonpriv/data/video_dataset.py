"""Real video datasets: the shared base of the UCF101 and HMDB51 sources and their clip dataset.

A :class:`VideoFolderSource` subclass only says how to read its split files
(:meth:`~VideoFolderSource.read_split_lists`). The base then, at construction:

1. finds every listed video on disk (exact path first, then the same name case-insensitively and
   with any video suffix, so ``.mp4`` copies of ``.avi`` originals are found);
2. attaches the video's privacy labels from the label file (:mod:`anonpriv.data.privacy_labels`);
3. probes every video with PyAV (opens it, reads its metadata, decodes its first frame, reads
   every packet without decoding) to learn its frame count and to find unreadable and truncated
   files before training starts;
4. checks the label file against the split: listed videos without labels, and labels for videos
   that no split file lists.

Each problem is a video **missing** from disk, **unreadable**, **unlabelled**, or an
**unknown label** entry. With ``on_error="raise"`` (default) any problem raises
:class:`DatasetError` with the count per kind, a few names and the fix; with ``on_error="skip"``
the affected videos are left out (unknown label entries ignored) and one
:class:`SkippedVideosWarning` reports the counts and a few names. Nothing is dropped silently:
``source.skipped`` keeps every skipped name by kind.

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
import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from anonpriv.data.clip_sampling import evenly_spaced_clip_indices, random_clip_indices
from anonpriv.data.clip_transforms import center_crop_box, frames_to_clip, random_resized_crop_box
from anonpriv.data.privacy_labels import PrivacyLabels, load_privacy_labels, video_key
from anonpriv.data.sources import ClipDataset, VideoSource
from anonpriv.data.video_io import VideoReadError, is_video_file, probe_video, read_frames

PROBLEM_KINDS = {
    "missing": "listed in a split file but not found on disk",
    "unreadable": "cannot be opened or decoded",
    "unlabelled": "have no entry in the privacy-label file",
    "unknown_labels": "label entries name videos that no split file lists",
}
SHOWN_NAMES = 5


class DatasetError(ValueError):
    """The dataset on disk disagrees with its split or label files; the message says how."""


class SkippedVideosWarning(UserWarning):
    """``on_error="skip"`` left videos out; the message gives the counts and a few names."""


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """One video of a split: its file, id (``Class/name``), labels and frame count."""

    path: str
    video_id: str
    action: int
    privacy: np.ndarray
    num_frames: int


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
    """Clips decoded from video files.

    Training: one item per video, a random clip (random start, random resized crop, flip).
    Evaluation: ``num_clips`` items per video, evenly spaced clips with a centre crop, all with the
    video's id so the metrics average their predictions per video.
    """

    def __init__(self, records: list[VideoRecord], settings: ClipSettings, training: bool, num_clips: int = 1) -> None:
        self.records = records
        self.settings = settings
        self.training = training
        self.num_clips = 1 if training else num_clips
        self._actions = np.repeat(np.array([r.action for r in records], dtype=np.int64), self.num_clips)
        privacy = np.stack([r.privacy for r in records]).astype(np.float32) if records else np.zeros((0, 0), np.float32)
        self._privacy = np.repeat(privacy, self.num_clips, axis=0)

    def __len__(self) -> int:
        return len(self.records) * self.num_clips

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return self._actions, self._privacy

    def frame_indices(self, index: int) -> np.ndarray:
        """Frame indices of item ``index`` (random for training)."""
        s = self.settings
        record = self.records[index // self.num_clips]
        if self.training:
            return random_clip_indices(record.num_frames, s.num_frames, s.frame_stride)
        clips = evenly_spaced_clip_indices(record.num_frames, s.num_frames, s.frame_stride, self.num_clips)
        return clips[index % self.num_clips]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        s = self.settings
        record = self.records[index // self.num_clips]
        frames = read_frames_of(record, self.frame_indices(index))
        height, width = frames.shape[1:3]
        if self.training:
            box = random_resized_crop_box(height, width, s.height, s.width, scale=s.train_crop_scale)
            flip = bool(torch.rand(()) < 0.5)
        else:
            box, flip = center_crop_box(height, width, s.height, s.width, s.test_crop), False
        return {
            "video": frames_to_clip(frames, box, s.height, s.width, flip=flip),
            "action": torch.tensor(record.action, dtype=torch.int64),
            "privacy": torch.from_numpy(record.privacy.astype(np.float32)),
            "id": record.video_id,
        }


def video_id_of(relative: str) -> str:
    """The id of listed video ``Class/name.avi``: ``Class/name`` (case kept, video suffix dropped)."""
    relative = relative.strip().replace("\\", "/")
    stem, dot, suffix = relative.rpartition(".")
    return stem if dot and is_video_file(Path(relative)) else relative


def read_frames_of(record: VideoRecord, indices: np.ndarray) -> np.ndarray:
    """Decode ``indices`` of ``record``'s file; errors name the file and the video id."""
    try:
        return read_frames(record.path, indices, expected_frames=record.num_frames)
    except VideoReadError as error:
        raise VideoReadError(f"video {record.video_id}: {error}") from error


# Probe results shared by every source in this process, keyed by file identity.
_PROBE_CACHE: dict[tuple[str, int, int], int | str] = {}
_PROBE_LOCK = threading.Lock()


def probe_frame_count(path: str) -> int:
    """Frame count of ``path`` (cached per file size and mtime); raises VideoReadError."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _PROBE_LOCK:
        cached = _PROBE_CACHE.get(key)
    if cached is None:
        try:
            cached = probe_video(path, check_complete=True).num_frames
        except VideoReadError as error:
            cached = str(error)
        with _PROBE_LOCK:
            _PROBE_CACHE[key] = cached
    if isinstance(cached, str):
        raise VideoReadError(cached)
    return cached


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
        if split not in (1, 2, 3):
            raise ValueError(f"split={split}: {self.dataset_name} has official splits 1, 2 and 3.")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error={on_error!r}: use 'raise' or 'skip'.")
        for name, value in (("num_frames", num_frames), ("height", height), ("width", width),
                            ("frame_stride", frame_stride), ("test_clips", test_clips), ("val_clips", val_clips)):
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
        if str(root).strip() in ("", "???"):
            raise ValueError(
                f"{self.dataset_name} root is not set: pass --data.source.init_args.root /path/to/dataset "
                f"(the folder that holds {self.expected_layout()})."
            )
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.dataset_name} root {str(self.root)!r} does not exist: point root at the folder that holds "
                f"{self.expected_layout()}."
            )
        self.split = split
        self.on_error = on_error
        self._videos_dir = self._find_dir("videos_dir", videos_dir, self.video_dir_candidates, self.looks_like_videos_dir)
        self._splits_dir = self._find_dir("splits_dir", splits_dir, self.split_dir_candidates, self.looks_like_splits_dir)
        self.settings = ClipSettings(num_frames, height, width, frame_stride, test_crop, (low, high))
        self.test_clips, self.val_clips, self.val_fraction = test_clips, val_clips, val_fraction
        self.skipped: dict[str, list[str]] = {kind: [] for kind in PROBLEM_KINDS}
        self.excluded: list[str] = []

        self._action_names, listed, all_listed = self.read_split_lists()
        labels = self._load_labels(privacy_labels, attributes, label_min_fraction)
        self._privacy_names = labels.attributes
        split_labels = self.labels_by_split(labels)
        excluded_keys = self._load_exclusions(exclude_videos)
        listed = self._carve_validation(listed)
        self._records = {name: self._build_records(entries, split_labels[name], excluded_keys)
                         for name, entries in listed.items()}
        listed_keys = {video_key(v) for v in all_listed}
        listed_names = {k.rsplit("/", 1)[-1] for k in listed_keys}
        label_files = {id(file): file for file in split_labels.values()}.values()
        self.skipped["unknown_labels"] = sorted({
            k for file in label_files for k in file.values
            if k not in listed_keys and ("/" in k or k not in listed_names)
        })
        self._report()

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

    def records(self, split: str) -> list[VideoRecord]:
        """The videos of ``train``, ``val`` (carved from the training list) or ``test``."""
        if split not in self._records:
            raise ValueError(f"unknown split {split!r}: use 'train', 'val' or 'test'.")
        return list(self._records[split])

    def dataset(self, split: str) -> VideoClipDataset:
        if split == "train":
            return VideoClipDataset(self._records["train"], self.settings, training=True)
        if split == "val":
            return VideoClipDataset(self._records["val"], self.settings, training=False, num_clips=self.val_clips)
        if split == "test":
            return VideoClipDataset(self._records["test"], self.settings, training=False, num_clips=self.test_clips)
        raise ValueError(f"unknown split {split!r}: use 'train', 'val' or 'test'.")

    # -- construction steps ------------------------------------------------------------------------
    def _load_labels(self, path: str | None, attributes: list[str] | None, min_fraction: float) -> PrivacyLabels:
        if path is None:
            candidates = [self.root / "privacy_labels.csv", self.root / "privacy_labels.json"]
            found = [p for p in candidates if p.exists()]
            if not found:
                raise FileNotFoundError(
                    f"no privacy labels: pass privacy_labels (a CSV/JSON of video-level attributes, the PA-HMDB51 "
                    f"folder or a VP pickle; formats in anonpriv/data/privacy_labels.py) or put "
                    f"{candidates[0]} or {candidates[1]} there."
                )
            path = str(found[0])
        return load_privacy_labels(path, attributes, min_fraction)

    def _carve_validation(self, listed: dict[str, list[tuple[str, int]]]) -> dict[str, list[tuple[str, int]]]:
        """``listed`` with ``val`` taken out of ``train``: groups in hash order until ``val_fraction``
        of the training videos is reached, at least one group on each side."""
        groups: dict[str, list[tuple[str, int]]] = {}
        for entry in listed["train"]:
            groups.setdefault(self.group_of(entry[0]), []).append(entry)
        if len(groups) < 2:
            raise DatasetError(
                f"{self.dataset_name} split {self.split}: the training list has {len(groups)} group(s) of videos; a "
                "validation split is carved from whole groups, so it needs at least two: list more training videos."
            )
        target = self.val_fraction * len(listed["train"])
        held_out: set[str] = set()
        count = 0
        for group in sorted(groups, key=lambda g: hashlib.sha256(g.encode()).hexdigest()):
            if count >= target or len(held_out) == len(groups) - 1:
                break
            held_out.add(group)
            count += len(groups[group])
        return {
            **listed,
            "train": [e for e in listed["train"] if self.group_of(e[0]) not in held_out],
            "val": [e for e in listed["train"] if self.group_of(e[0]) in held_out],
        }

    def _load_exclusions(self, path: str | None) -> set[str]:
        if path is None:
            return set()
        file = Path(path)
        if file.suffix.lower() == ".txt":
            if not file.is_file():
                raise FileNotFoundError(f"exclude_videos file {path!r} does not exist.")
            return {video_key(line) for line in file.read_text().splitlines() if line.strip()}
        return set(load_privacy_labels(file).values)

    def _resolve(self, relative: str) -> Path | None:
        """The file of listed video ``Class/name.ext``: exact, else same name any case / suffix."""
        exact = self.videos_dir() / relative
        if exact.is_file():
            return exact
        folder, _, name = relative.replace("\\", "/").rpartition("/")
        index = self._folder_index(folder)
        return index.get(video_key(name))

    def _folder_index(self, folder: str) -> dict[str, Path]:
        cache = self.__dict__.setdefault("_folder_indices", {})
        if folder not in cache:
            directory = self.videos_dir() / folder
            if not directory.is_dir():  # the class folder may differ in case too
                matches = [d for d in self.videos_dir().iterdir() if d.is_dir() and d.name.lower() == folder.lower()]
                directory = matches[0] if matches else None
            cache[folder] = {} if directory is None else {
                video_key(p.name): p for p in directory.iterdir() if p.is_file() and is_video_file(p)
            }
        return cache[folder]

    def _build_records(self, entries: list[tuple[str, int]], labels: PrivacyLabels,
                       excluded: set[str]) -> list[VideoRecord]:
        records = []
        progress = tqdm(entries, desc=f"{self.dataset_name}: checking videos", unit="video", leave=False,
                        disable=None if len(entries) > 200 else True)
        for relative, action in progress:
            video_id = video_id_of(relative)
            key = video_key(relative)
            if key in excluded or key.rsplit("/", 1)[-1] in excluded:
                self.excluded.append(video_id)
                continue
            path = self._resolve(relative)
            if path is None:
                self.skipped["missing"].append(relative)
                continue
            privacy = labels.lookup(video_id)
            if privacy is None:
                self.skipped["unlabelled"].append(video_id)
                continue
            try:
                num_frames = probe_frame_count(str(path))
            except VideoReadError as error:
                self.skipped["unreadable"].append(f"{relative} ({error})")
                continue
            records.append(VideoRecord(str(path), video_id, action, privacy, num_frames))
        return records

    def _report(self) -> None:
        lines = []
        for kind, names in self.skipped.items():
            if names:
                shown = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
                lines.append(f"  {len(names)} {kind} ({PROBLEM_KINDS[kind]}): {shown}")
        if not lines:
            return
        where = f"{self.dataset_name} split {self.split} under {self.root}"
        if self.on_error == "raise":
            raise DatasetError(
                f"{where} disagrees with its split or label files:\n" + "\n".join(lines) + "\n"
                "Fix the files (re-extract the archive, use the matching split/label files), or pass "
                "on_error: skip to leave these videos out; they are then counted and reported."
            )
        warnings.warn(f"{where}: on_error=skip left out videos:\n" + "\n".join(lines), SkippedVideosWarning,
                      stacklevel=3)
