"""Video-level privacy labels: named binary attributes per video, read from a file.

Five formats are read, chosen by the path (and, for CSV, by the header):

**CSV** (``*.csv``): a header ``video,<attribute>,<attribute>,...`` then one row per video with
0/1 values::

    video,face,skin_color,gender,nudity,relationship
    ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi,1,1,0,0,0

**The paper code's CSV** (``*.csv`` with the header ``File Path,Array Values``): one row per video,
the labels as the text of an array, columns unnamed (the order is :data:`DEFAULT_ATTRIBUTES`
unless ``attributes`` names them)::

    File Path,Array Values
    ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.mp4,[[1 1 0 0 0]]

**JSON** (``*.json`` with a ``videos`` key): attribute names and one list (in that order) or one
``{attribute: 0/1}`` object per video::

    {"attributes": ["face", "skin_color", "gender", "nudity", "relationship"],
     "videos": {"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01": [1, 1, 0, 0, 0]}}

**PA-HMDB51** (a ``*.json`` in the release's per-class format, or the folder of them): per video,
per attribute, frame ranges ``[start, end, value]`` (inclusive; ``value`` an integer level or a
list of levels)::

    {"April_09_brush_hair_u_nm_np1_ba_goo_0.avi":
        {"face": [[0, 49, 2], [50, 99, 0]], "gender": [[0, 99, 2]], ..., "note": "", "review": false}}

PA-HMDB51 levels become one bit per attribute, "the attribute is visible / identifiable" (level 0
means not, any level above 0 means it is; a list of levels counts as above 0 if any entry is):

    ============  ====================================  ==========================================
    attribute     PA-HMDB51 levels                      bit = 1 when the level is
    ============  ====================================  ==========================================
    face          0 invisible, 1 partial, 2 complete    1 or 2 (partly visible counts)
    skin_color    0 unidentifiable, 1 white,            1, 2 or 3 (any identifiable colour)
                  2 brown/yellow, 3 black
    gender        0 unidentifiable, 1 male, 2 female    1, 2 or [1, 2] (gender can be told, not
                                                        which one)
    nudity        0 none, 1 partial (e.g. short         1 or 2 (short sleeves count)
                  sleeves), 2 semi-nude
    relationship  0 not identifiable, 1 identifiable    1
    ============  ====================================  ==========================================

A frame shows the attribute when a range covering it has a level above 0; the video's bit is 1
when the frames that show it are more than none (``min_fraction=0``, default) or, with
``min_fraction=f > 0``, at least ``f`` of the frames labelled for that attribute. On the real
release the bits are far from balanced (gender is 1 for 129 of the 130 split-1 test videos), so
read an attribute's AP next to its positive rate.

**Pickle** (``*.pkl``/``*.pickle``, the VP-UCF / VP-HMDB release of the paper's code,
``annotations/ucf101_privacy_attribute_label.pickle``): ``{"Class/video.mp4": int array (1, P)}``
with unnamed columns. Without ``attributes`` the five columns are read as
:data:`DEFAULT_ATTRIBUTES` (``face, skin_color, gender, nudity, relationship``, the order of the
paper's tables); pass ``attributes`` to name them otherwise. Only load pickles you trust
(unpickling can run code).

Video keys: ``Class/name`` or just ``name``; the file suffix (``.avi``, ``.mp4``, ...) is ignored and
matching is case-insensitive, so the same label file serves ``.avi`` originals and ``.mp4`` copies.
A key without a class matches the video of that name in any class.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np

from anonpriv.data.video_io import VIDEO_SUFFIXES

#: Attribute order of VP-UCF / VP-HMDB / PA-HMDB51 when a file does not fix one: the column order of
#: the paper's tables (face, skin color, gender, nudity, relationship). The VP pickles and the paper
#: code's CSV leave their columns unnamed, so this is the order they are read in by default.
DEFAULT_ATTRIBUTES = ("face", "skin_color", "gender", "nudity", "relationship")


#: Header of the paper code's CSV (lower-cased, BOM stripped).
PAPER_CSV_HEADER = ["file path", "array values"]


class PrivacyLabelError(ValueError):
    """A privacy-label file is malformed; the message names the file, the entry and the fix."""


def video_key(name: str) -> str:
    """Matching key of a video path or id: forward slashes, no leading ``./``, no video suffix,
    lower case (``Class/v_X.AVI`` -> ``class/v_x``)."""
    key = name.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    stem, dot, suffix = key.rpartition(".")
    if dot and f".{suffix.lower()}" in VIDEO_SUFFIXES:
        key = stem
    return key.lower()


@dataclasses.dataclass
class PrivacyLabels:
    """Binary labels ``(P,)`` per video key for the named ``attributes``, read from ``path``."""

    attributes: list[str]
    values: dict[str, np.ndarray]
    path: str

    def key_of(self, video_id: str) -> str | None:
        """The label-file key of video ``Class/name`` (by full key, then by name alone), or None."""
        key = video_key(video_id)
        if key in self.values:
            return key
        name = key.rsplit("/", 1)[-1]
        if name in self.values:
            return name
        return None

    def lookup(self, video_id: str) -> np.ndarray | None:
        """The labels of video ``Class/name``, or None when the file has none for it."""
        key = self.key_of(video_id)
        return None if key is None else self.values[key]


def _binary(value, where: str) -> float:
    if value in (0, 1, "0", "1", True, False) or (isinstance(value, float) and value in (0.0, 1.0)):
        return float(int(value))
    raise PrivacyLabelError(f"{where}: label {value!r} is not 0 or 1.")


def _select(attributes: list[str], wanted: list[str] | None, path: str) -> list[int]:
    """Column positions of ``wanted`` attributes (all, in file order, when None)."""
    if wanted is None:
        return list(range(len(attributes)))
    unknown = [a for a in wanted if a not in attributes]
    if unknown:
        raise PrivacyLabelError(f"{path}: no attribute(s) {unknown}; the file has {attributes}.")
    return [attributes.index(a) for a in wanted]


def _store(values: dict[str, np.ndarray], key: str, labels: np.ndarray, path: str) -> None:
    key = video_key(key)
    if not key:
        raise PrivacyLabelError(f"{path}: an entry has an empty video name.")
    if key in values:
        raise PrivacyLabelError(f"{path}: video {key!r} is labelled twice; keep one entry per video.")
    values[key] = labels.astype(np.float32)


def read_csv_labels(path: str | Path, attributes: list[str] | None = None) -> PrivacyLabels:
    """The CSV format (see the module docstring)."""
    path = str(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0]] == PAPER_CSV_HEADER:
        return _read_paper_csv_rows(rows, path, attributes)
    if not rows or rows[0][0].strip().lower() != "video" or len(rows[0]) < 2:
        raise PrivacyLabelError(
            f"{path}: the first line must be the header 'video,<attribute>,...' (e.g. video,face,gender) "
            "or the paper code's 'File Path,Array Values'."
        )
    names = [cell.strip() for cell in rows[0][1:]]
    columns = _select(names, attributes, path)
    values: dict[str, np.ndarray] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise PrivacyLabelError(f"{path}, line {line_number}: {len(row)} columns, the header has {len(rows[0])}.")
        where = f"{path}, line {line_number}"
        labels = np.array([_binary(row[1 + c].strip(), where) for c in columns])
        _store(values, row[0], labels, path)
    return PrivacyLabels([names[c] for c in columns], values, path)


def _unnamed_columns(count: int, attributes: list[str] | None, where: str) -> list[str]:
    """Names of ``count`` unnamed label columns: ``attributes``, else :data:`DEFAULT_ATTRIBUTES`."""
    names = list(attributes) if attributes else list(DEFAULT_ATTRIBUTES)
    if count != len(names):
        fix = "name them" if attributes else f"the default names {list(DEFAULT_ATTRIBUTES)} do not fit: name them"
        raise PrivacyLabelError(f"{where}: {count} label columns but {len(names)} attribute names; {fix} in column "
                                "order with attributes.")
    return names


def _array_text(text: str, where: str) -> list[str]:
    """The entries of an array written as text: ``[[1 0 1]]``, ``[1, 0, 1]`` or ``1 0 1``."""
    cells = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    if not cells:
        raise PrivacyLabelError(f"{where}: the array {text!r} is empty.")
    return cells


def _read_paper_csv_rows(rows: list[list[str]], path: str, attributes: list[str] | None) -> PrivacyLabels:
    """The paper code's ``File Path,Array Values`` CSV (see the module docstring)."""
    values: dict[str, np.ndarray] = {}
    names: list[str] | None = None
    for line_number, row in enumerate(rows[1:], start=2):
        where = f"{path}, line {line_number}"
        if len(row) != 2:
            raise PrivacyLabelError(f"{where}: expected 'File Path,Array Values' (quote an array that has commas).")
        cells = _array_text(row[1], where)
        if names is None:
            names = _unnamed_columns(len(cells), attributes, where)
        elif len(cells) != len(names):
            raise PrivacyLabelError(f"{where}: {len(cells)} values, earlier rows have {len(names)}.")
        _store(values, _last_two_parts(row[0]), np.array([_binary(c, where) for c in cells]), path)
    return PrivacyLabels(names or _unnamed_columns(len(DEFAULT_ATTRIBUTES), attributes, path), values, path)


def _last_two_parts(file_path: str) -> str:
    """``Class/name`` of a file path however deep (``/data/UCF-101/Class/v_X.avi`` -> ``Class/v_X.avi``)."""
    return "/".join(file_path.strip().replace("\\", "/").split("/")[-2:])


def read_json_labels(data: dict, path: str, attributes: list[str] | None = None) -> PrivacyLabels:
    """The JSON format ``{"attributes": [...], "videos": {...}}`` (see the module docstring)."""
    videos = data.get("videos")
    names = data.get("attributes")
    if not isinstance(videos, dict):
        raise PrivacyLabelError(f"{path}: 'videos' must map each video to its labels.")
    if names is None:
        first = next(iter(videos.values()), None)
        if not isinstance(first, dict):
            raise PrivacyLabelError(f"{path}: give 'attributes' (the names of the label columns).")
        names = list(first)
    columns = _select(list(names), attributes, path)
    values: dict[str, np.ndarray] = {}
    for key, entry in videos.items():
        where = f"{path}, video {key!r}"
        if isinstance(entry, dict):
            missing = [n for n in names if n not in entry]
            if missing:
                raise PrivacyLabelError(f"{where}: no value for {missing}.")
            entry = [entry[n] for n in names]
        if not isinstance(entry, list) or len(entry) != len(names):
            raise PrivacyLabelError(f"{where}: expected {len(names)} values ({names}), got {entry!r}.")
        _store(values, key, np.array([_binary(entry[c], where) for c in columns]), path)
    return PrivacyLabels([names[c] for c in columns], values, path)


def _covered(ranges: list[tuple[int, int]]) -> set[int]:
    frames: set[int] = set()
    for start, end in ranges:
        frames.update(range(int(start), int(end) + 1))
    return frames


def frame_ranges_to_label(ranges: list, min_fraction: float = 0.0, where: str = "") -> float:
    """The PA-HMDB51 rule: 1 when the frames whose level is above 0 are more than none
    (``min_fraction=0``) or at least ``min_fraction`` of the labelled frames, else 0."""
    labelled, shown = [], []
    for entry in ranges:
        if not (isinstance(entry, list | tuple) and len(entry) == 3):
            raise PrivacyLabelError(f"{where}: expected [start, end, level], got {entry!r}.")
        start, end, level = entry
        if int(end) < int(start):
            raise PrivacyLabelError(f"{where}: range {entry!r} ends before it starts.")
        levels = level if isinstance(level, list) else [level]
        labelled.append((start, end))
        if any(int(v) > 0 for v in levels):
            shown.append((start, end))
    labelled_frames = _covered(labelled)
    if not labelled_frames:
        raise PrivacyLabelError(f"{where}: no frame range is labelled.")
    shown_frames = len(_covered(shown))
    if min_fraction <= 0:
        return float(shown_frames > 0)
    return float(shown_frames / len(labelled_frames) >= min_fraction)


def _looks_like_pa_hmdb(data) -> bool:
    if not isinstance(data, dict) or not data or "videos" in data:
        return False
    first = next(iter(data.values()))
    return isinstance(first, dict) and any(isinstance(v, list) for v in first.values())


def read_pa_hmdb_labels(files: list[Path], attributes: list[str] | None = None,
                        min_fraction: float = 0.0) -> PrivacyLabels:
    """PA-HMDB51 frame-range files (one per class, or merged) turned into video-level labels."""
    entries: dict[str, tuple[dict, str]] = {}
    for file in files:
        data = json.loads(Path(file).read_text(encoding="utf-8-sig"))
        if not _looks_like_pa_hmdb(data):
            raise PrivacyLabelError(f"{file}: not in the PA-HMDB51 format {{video: {{attribute: [[start, end, level]]}}}}.")
        for video, entry in data.items():
            entries[video] = (entry, str(file))
    path = str(files[0].parent if len(files) > 1 else files[0])
    found = sorted({name for entry, _ in entries.values() for name, v in entry.items() if isinstance(v, list)})
    names = list(attributes) if attributes else (
        [a for a in DEFAULT_ATTRIBUTES if a in found] + [a for a in found if a not in DEFAULT_ATTRIBUTES])
    unknown = [a for a in names if a not in found]
    if unknown:
        raise PrivacyLabelError(f"{path}: no attribute(s) {unknown}; the files have {found}.")
    values: dict[str, np.ndarray] = {}
    for video, (entry, file) in entries.items():
        labels = []
        for name in names:
            where = f"{file}, video {video!r}, attribute {name!r}"
            if not isinstance(entry.get(name), list):
                raise PrivacyLabelError(f"{where}: missing; every video needs ranges for every attribute.")
            labels.append(frame_ranges_to_label(entry[name], min_fraction, where))
        _store(values, video, np.array(labels), path)
    return PrivacyLabels(names, values, path)


def read_pickle_labels(path: str | Path, attributes: list[str] | None = None) -> PrivacyLabels:
    """The VP-UCF / VP-HMDB pickle ``{"Class/video.mp4": array (1, P)}``. Its columns are unnamed:
    ``attributes`` names them in order, default :data:`DEFAULT_ATTRIBUTES` (the paper's tables)."""
    path = str(path)
    with open(path, "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - the user points at their own dataset file
    if not isinstance(data, dict):
        raise PrivacyLabelError(f"{path}: expected a dict of video -> label array, got {type(data).__name__}.")
    values: dict[str, np.ndarray] = {}
    names: list[str] | None = None
    for key, array in data.items():
        where = f"{path}, video {key!r}"
        row = np.asarray(array).reshape(-1)
        if names is None:
            names = _unnamed_columns(row.size, attributes, where)
        elif row.size != len(names):
            raise PrivacyLabelError(f"{where}: {row.size} columns, earlier videos have {len(names)}.")
        _store(values, str(key), np.array([_binary(int(v), where) for v in row]), path)
    return PrivacyLabels(names or _unnamed_columns(len(DEFAULT_ATTRIBUTES), attributes, path), values, path)


def load_privacy_labels(path: str | Path, attributes: list[str] | None = None,
                        min_fraction: float = 0.0) -> PrivacyLabels:
    """Read a privacy-label file in any of the formats of this module, chosen by the path.

    ``attributes`` keeps (and orders) these attributes; all of the file's by default. For the files
    with unnamed columns (VP pickles, the paper code's CSV) it names the columns in order, default
    :data:`DEFAULT_ATTRIBUTES`. ``min_fraction`` applies the PA-HMDB51 frame-range rule.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"privacy-label file {str(path)!r} does not exist: give a CSV/JSON of video-level labels "
            "(see anonpriv/data/privacy_labels.py for the formats) or the PA-HMDB51 folder of JSON files."
        )
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise PrivacyLabelError(f"{path}: a label folder must hold PA-HMDB51 JSON files (<class>.json).")
        return read_pa_hmdb_labels(files, attributes, min_fraction)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_labels(path, attributes)
    if suffix in (".pkl", ".pickle"):
        return read_pickle_labels(path, attributes)
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as error:
            raise PrivacyLabelError(f"{path}: not valid JSON ({error}).") from error
        if _looks_like_pa_hmdb(data):
            return read_pa_hmdb_labels([path], attributes, min_fraction)
        if isinstance(data, dict):
            return read_json_labels(data, str(path), attributes)
        raise PrivacyLabelError(f"{path}: expected a JSON object; see the formats in anonpriv/data/privacy_labels.py.")
    raise PrivacyLabelError(f"{path}: unknown label format {suffix!r}; use .csv, .json, .pkl or a PA-HMDB51 folder.")
