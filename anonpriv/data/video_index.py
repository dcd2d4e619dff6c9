"""The index of a real video dataset: which videos each split holds, their files, labels and frame
counts, built before any clip is decoded.

A source reads its split files into ``(Class/video.ext, action)`` lists per split and loads its
privacy labels; :meth:`VideoIndex.build` then, for every listed video:

1. finds its file (:class:`VideoFinder`: exact path first, then the same name case-insensitively and
   with any video suffix, so ``.mp4`` copies of ``.avi`` originals are found);
2. attaches its privacy labels from the label file (:mod:`anonpriv.data.privacy_labels`);
3. probes it with PyAV (opens it, reads its metadata, decodes its first frame, reads every packet
   without decoding) to learn its frame count and to find unreadable and truncated files before
   training starts;

and checks the label files against the split: listed videos without labels, and labels for videos
that no split file lists.

Each problem is a video **missing** from disk, **unreadable**, **unlabelled**, or an
**unknown label** entry. :meth:`VideoIndex.report` with ``on_error="raise"`` raises
:class:`DatasetError` with the count per kind, a few names and the fix; with ``on_error="skip"``
the affected videos stay out of the index (unknown label entries ignored) and one
:class:`SkippedVideosWarning` reports the counts and a few names. Nothing is dropped silently:
``index.skipped`` keeps every skipped name by kind.

:func:`carve_validation` divides a training list into train and val by whole groups.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from anonpriv.data.privacy_labels import PrivacyLabels, load_privacy_labels, video_key
from anonpriv.data.video_io import VideoReadError, is_video_file, probe_video

PROBLEM_KINDS = {
    "missing": "listed in a split file but not found on disk",
    "unreadable": "cannot be opened or decoded",
    "unlabelled": "have no entry in the privacy-label file",
    "unknown_labels": "label entries name videos that no split file lists",
}
SHOWN_NAMES = 5

#: ``(video path relative to the videos folder, action)``: one line of a split list
Entry = tuple[str, int]


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


def video_id_of(relative: str) -> str:
    """The id of listed video ``Class/name.avi``: ``Class/name`` (case kept, video suffix dropped)."""
    relative = relative.strip().replace("\\", "/")
    stem, dot, _ = relative.rpartition(".")
    return stem if dot and is_video_file(Path(relative)) else relative


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


class VideoFinder:
    """Finds listed videos ``Class/name.ext`` under ``folder``: the exact path, else the same name in
    any case and with any video suffix (class folders may differ in case too)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._by_class: dict[str, dict[str, Path]] = {}

    def __call__(self, relative: str) -> Path | None:
        exact = self.folder / relative
        if exact.is_file():
            return exact
        class_folder, _, name = relative.replace("\\", "/").rpartition("/")
        return self._videos_in(class_folder).get(video_key(name))

    def _videos_in(self, class_folder: str) -> dict[str, Path]:
        if class_folder not in self._by_class:
            directory = self.folder / class_folder
            if not directory.is_dir():
                matches = [d for d in self.folder.iterdir() if d.is_dir() and d.name.lower() == class_folder.lower()]
                directory = matches[0] if matches else None
            self._by_class[class_folder] = {} if directory is None else {
                video_key(p.name): p for p in directory.iterdir() if p.is_file() and is_video_file(p)
            }
        return self._by_class[class_folder]


def default_label_file(root: Path) -> str:
    """``root/privacy_labels.csv`` or ``.json``, whichever exists (CSV first)."""
    candidates = [root / "privacy_labels.csv", root / "privacy_labels.json"]
    found = [p for p in candidates if p.exists()]
    if not found:
        raise FileNotFoundError(
            f"no privacy labels: pass privacy_labels (a CSV/JSON of video-level attributes, the PA-HMDB51 "
            f"folder or a VP pickle; formats in anonpriv/data/privacy_labels.py) or put "
            f"{candidates[0]} or {candidates[1]} there."
        )
    return str(found[0])


def load_exclusions(path: str | None) -> set[str]:
    """The video keys of ``path``: a text file of names (one per line) or any label file; none for None."""
    if path is None:
        return set()
    file = Path(path)
    if file.suffix.lower() == ".txt":
        if not file.is_file():
            raise FileNotFoundError(f"exclude_videos file {path!r} does not exist.")
        return {video_key(line) for line in file.read_text().splitlines() if line.strip()}
    return set(load_privacy_labels(file).values)


def carve_validation(train: list[Entry], group_of: Callable[[str], str], fraction: float,
                     where: str) -> tuple[list[Entry], list[Entry]]:
    """``(train, val)`` from a training list: groups in hash order go to val until ``fraction`` of the
    videos is reached, at least one group on each side (the same cut on every run and machine,
    whichever videos a run skips)."""
    groups: dict[str, list[Entry]] = {}
    for entry in train:
        groups.setdefault(group_of(entry[0]), []).append(entry)
    if len(groups) < 2:
        raise DatasetError(
            f"{where}: the training list has {len(groups)} group(s) of videos; a "
            "validation split is carved from whole groups, so it needs at least two: list more training videos."
        )
    target = fraction * len(train)
    held_out: set[str] = set()
    count = 0
    for group in sorted(groups, key=lambda g: hashlib.sha256(g.encode()).hexdigest()):
        if count >= target or len(held_out) == len(groups) - 1:
            break
        held_out.add(group)
        count += len(groups[group])
    return ([e for e in train if group_of(e[0]) not in held_out],
            [e for e in train if group_of(e[0]) in held_out])


@dataclasses.dataclass
class VideoIndex:
    """The videos of every split, and every video left out and why (see the module docstring)."""

    #: split -> its videos, in split-list order
    records: dict[str, list[VideoRecord]]
    #: problem kind -> the names it left out (every kind of :data:`PROBLEM_KINDS` is a key)
    skipped: dict[str, list[str]]
    #: ids of the videos left out by ``exclude_videos``
    excluded: list[str]

    @classmethod
    def build(cls, listed: dict[str, list[Entry]], labels: dict[str, PrivacyLabels], find: Callable[[str], Path | None],
              all_listed: Iterable[str], excluded_keys: AbstractSet[str] = frozenset(), name: str = "video") -> VideoIndex:
        """Index the ``listed`` videos of each split with that split's ``labels``; ``all_listed`` is
        every video any split file names (label entries for others are unknown)."""
        index = cls(records={}, skipped={kind: [] for kind in PROBLEM_KINDS}, excluded=[])
        for split, entries in listed.items():
            index.records[split] = index._add(entries, labels[split], find, excluded_keys, name)
        listed_keys = {video_key(v) for v in all_listed}
        listed_names = {k.rsplit("/", 1)[-1] for k in listed_keys}
        label_files = {id(file): file for file in labels.values()}.values()
        index.skipped["unknown_labels"] = sorted({
            k for file in label_files for k in file.values
            if k not in listed_keys and ("/" in k or k not in listed_names)
        })
        return index

    def _add(self, entries: list[Entry], labels: PrivacyLabels, find: Callable[[str], Path | None],
             excluded: AbstractSet[str], name: str) -> list[VideoRecord]:
        records = []
        progress = tqdm(entries, desc=f"{name}: checking videos", unit="video", leave=False,
                        disable=None if len(entries) > 200 else True)
        for relative, action in progress:
            video_id = video_id_of(relative)
            key = video_key(relative)
            if key in excluded or key.rsplit("/", 1)[-1] in excluded:
                self.excluded.append(video_id)
                continue
            path = find(relative)
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

    def report(self, where: str, on_error: str) -> None:
        """Raise :class:`DatasetError` (``on_error="raise"``) or warn (``"skip"``) when anything was left
        out; ``where`` names the dataset in the message. Call it from the source's ``__init__``: the
        warning points at the line that built the source."""
        lines = []
        for kind, names in self.skipped.items():
            if names:
                shown = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
                lines.append(f"  {len(names)} {kind} ({PROBLEM_KINDS[kind]}): {shown}")
        if not lines:
            return
        if on_error == "raise":
            raise DatasetError(
                f"{where} disagrees with its split or label files:\n" + "\n".join(lines) + "\n"
                "Fix the files (re-extract the archive, use the matching split/label files), or pass "
                "on_error: skip to leave these videos out; they are then counted and reported."
            )
        warnings.warn(f"{where}: on_error=skip left out videos:\n" + "\n".join(lines), SkippedVideosWarning,
                      stacklevel=3)
