"""HMDB51 (Kuehne et al. 2011) with video-level privacy labels (VP-HMDB), and PA-HMDB51.

Expected under ``root`` (the official archives extracted)::

    root/
      hmdb51_org/<class>/<video>.avi                         (hmdb51_org.rar with each class .rar
                                                             extracted; class folders may also sit in root)
      testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   (test_train_splits.rar; the folder may
                                                             also be hmdbTrainTestlist/, as in the paper's
                                                             code, or root itself)
      privacy_labels.csv                                      (or pass privacy_labels: a path)

Each split file lists one class's videos as ``<video>.avi <0|1|2>``: 1 train, 2 test, 0 not used in
that split. Action names are the class parts of the split file names, sorted. Only split ``k``'s
files are read, so videos of other splits' test sets never enter training (the split files of
different ``k`` must not be merged); a video marked both train and test is an error.

Splits: ``test`` is split ``k``'s test list; ``train`` and ``val`` divide its training list by source
video. A file name is ``<source>_<action>_<body>_<camera motion>_<people>_<view>_<quality>_<n>``
(e.g. ``April_09_brush_hair_u_nm_np1_ba_goo_0``); the clips cut from one source (``April_09``), in any
class, are one group and go to the same side.

PA-HMDB51 (Wu et al., 515 HMDB51 videos with frame-range privacy labels) is read by
:class:`PAHMDB51Source`: an evaluation-only set, its standard protocol trains on the other HMDB51
videos and tests on all 515.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

from anonpriv.data.privacy_labels import PrivacyLabelError, PrivacyLabels, load_privacy_labels, video_key
from anonpriv.data.video_dataset import VideoFolderSource
from anonpriv.data.video_index import DatasetError, video_id_of

ROLES = {"1": "train", "2": "test"}
#: ``<source>_<action>`` then the five meta tags and the clip number of an HMDB51 file name.
META_TAGS = re.compile(r"^(.+)_[a-z]+_(?:cm|nm)_np\d+_[a-z]+_(?:bad|med|goo)_\d+$")


def source_video_of(relative: str) -> str:
    """The source video of HMDB51 file ``<class>/<source>_<action>_<tags>_<n>.avi`` (lower case);
    a name that does not follow the pattern is its own source."""
    key = video_key(relative)
    folder, _, name = key.rpartition("/")
    match = META_TAGS.match(name)
    if not match:
        return key
    source = match.group(1)
    if folder and source.endswith(f"_{folder}"):
        source = source[: -len(folder) - 1]
    return source


class HMDB51Source(VideoFolderSource):
    """HMDB51 split 1, 2 or 3 from the official per-class split files; options in
    :class:`VideoFolderSource`."""

    dataset_name = "HMDB51"
    video_dir_candidates = ("hmdb51_org", "hmdb51", "HMDB51", "videos", ".")
    split_dir_candidates = ("testTrainMulti_7030_splits", "test_train_splits", "hmdbTrainTestlist", "splits", ".")

    @classmethod
    def expected_layout(cls) -> str:
        return ("the HMDB51 class folders (hmdb51_org/<class>/*.avi) and the split files "
                "(testTrainMulti_7030_splits/ or hmdbTrainTestlist/<class>_test_split<k>.txt)")

    def looks_like_splits_dir(self, folder: Path) -> bool:
        return any(folder.glob("*_test_split1.txt"))

    def group_of(self, relative: str) -> str:
        return source_video_of(relative)

    def split_files(self) -> dict[str, Path]:
        """``{class: split file}`` of this split, classes sorted."""
        suffix = f"_test_split{self.split}.txt"
        files = {p.name[: -len(suffix)]: p for p in self.splits_dir().glob(f"*{suffix}")}
        if not files:
            raise FileNotFoundError(f"no HMDB51 split files *{suffix} in {str(self.splits_dir())!r}: extract the "
                                    "official test_train_splits.rar there.")
        return dict(sorted(files.items()))

    def read_roles(self) -> tuple[list[str], list[tuple[str, int, str | None]]]:
        """``(action names, [(class/video.avi, action, "train" | "test" | None)])`` from this split's
        files, every listed video once (None: marked 0, unused in this split)."""
        files = self.split_files()
        entries: list[tuple[str, int, str | None]] = []
        for action, (name, path) in enumerate(files.items()):
            roles: dict[str, str | None] = {}
            for line_number, line in enumerate(path.read_text().splitlines(), start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise DatasetError(f"{path.name} line {line_number}: expected '<video>.avi <0|1|2>', got {line!r}.")
                relative = f"{name}/{fields[0]}"
                role = ROLES.get(fields[1])
                if role and roles.get(relative) not in (None, role):
                    raise DatasetError(f"{path.name}: {fields[0]} is marked both train and test.")
                roles[relative] = role or roles.get(relative)
            entries += [(relative, action, role) for relative, role in roles.items()]
        return list(files), entries

    def read_split_lists(self) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        names, entries = self.read_roles()
        lists: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
        for relative, action, role in entries:
            if role:
                lists[role].append((relative, action))
        return names, lists, [relative for relative, _, _ in entries]


class PAHMDB51Source(HMDB51Source):
    """PA-HMDB51: the HMDB51 videos of the PA-HMDB51 release, with its frame-range labels, as test set.

    PA-HMDB51 is an evaluation-only set (its repository's script tests on all 515 labelled videos).
    ``root`` is the HMDB51 folder (see :class:`HMDB51Source`); ``pa_labels`` the release's
    ``PrivacyAttributes`` folder of ``<class>.json`` files (levels turned into bits as described in
    :mod:`anonpriv.data.privacy_labels`).

    Args:
        pa_labels: the PA-HMDB51 ``PrivacyAttributes`` folder (or one merged JSON file).
        protocol: ``standard`` (default, the literature's): ``test`` is every PA-HMDB51 video;
            ``train`` and ``val`` are the HMDB51 videos not in PA-HMDB51 (every video the split
            files list, whatever its role; ``split`` only picks which files are read), labelled by
            ``privacy_labels`` (VP-HMDB, e.g. the paper's ``hmdb51_privacy_attribute_label.pickle``).
            ``per_split``: only PA-HMDB51 videos, divided by HMDB51 split ``split``'s train/test
            marks, all labelled from ``pa_labels``; the PA videos that split marks unused are left
            out, listed in ``source.unused`` and counted in a warning (split 1: 286 train, 130 test,
            99 unused). Not comparable with published PA-HMDB51 numbers.
        privacy_labels, attributes, label_min_fraction, ...: as in :class:`VideoFolderSource`
            (``privacy_labels`` is unused with ``per_split``).

    In the standard protocol a test video and training clips cut from the same film can coexist:
    the protocol is defined per video, as in the papers that report on it.
    """

    def __init__(
        self,
        root: str,
        pa_labels: str,
        protocol: Literal["standard", "per_split"] = "standard",
        privacy_labels: str | None = None,
        attributes: list[str] | None = None,
        label_min_fraction: float = 0.0,
        **kwargs,
    ) -> None:
        if protocol not in ("standard", "per_split"):
            raise ValueError(f"protocol={protocol!r}: use 'standard' (test on all PA-HMDB51 videos) or 'per_split'.")
        if str(pa_labels).strip() in ("", "???"):
            raise ValueError("pa_labels is not set: pass --data.source.init_args.pa_labels "
                             "/path/to/PA-HMDB51/PrivacyAttributes (the release's folder of <class>.json files).")
        if protocol == "per_split" and privacy_labels is not None:
            raise ValueError("protocol=per_split reads every label from pa_labels: leave privacy_labels unset "
                             "(or use protocol=standard, which trains on VP-HMDB labels).")
        self.protocol = protocol
        self.pa_labels_path = str(pa_labels)
        self._pa_options = (attributes, label_min_fraction)
        self.unused: list[str] = []
        super().__init__(root, privacy_labels=pa_labels if protocol == "per_split" else privacy_labels,
                         attributes=attributes, label_min_fraction=label_min_fraction, **kwargs)

    def pa_labels(self) -> PrivacyLabels:
        """The PA-HMDB51 labels (read once)."""
        if "_pa" not in self.__dict__:
            self._pa = load_privacy_labels(self.pa_labels_path, *self._pa_options)
        return self._pa

    def read_split_lists(self) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        names, entries = self.read_roles()
        pa = self.pa_labels()
        in_pa = [pa.key_of(video_id_of(relative)) is not None for relative, _, _ in entries]
        if self.protocol == "standard":
            lists = {
                "train": [(r, a) for (r, a, _), labelled in zip(entries, in_pa) if not labelled],
                "test": [(r, a) for (r, a, _), labelled in zip(entries, in_pa) if labelled],
            }
        else:
            lists = {role: [(r, a) for (r, a, marked), labelled in zip(entries, in_pa) if labelled and marked == role]
                     for role in ("train", "test")}
            self.unused = [video_id_of(r) for (r, _, marked), labelled in zip(entries, in_pa)
                           if labelled and not marked]
            if self.unused:
                warnings.warn(
                    f"PA-HMDB51 per_split protocol, HMDB51 split {self.split}: {len(self.unused)} PA-HMDB51 videos are "
                    f"marked unused (0) by that split and left out (source.unused lists them); protocol: standard "
                    "tests on all of them.", UserWarning, stacklevel=3)
        return names, lists, [relative for relative, _, _ in entries]

    def labels_by_split(self, labels: PrivacyLabels) -> dict[str, PrivacyLabels]:
        if self.protocol == "per_split":
            return super().labels_by_split(labels)
        pa = self.pa_labels()
        if labels.attributes != pa.attributes:
            raise PrivacyLabelError(
                f"the training labels {labels.path} have attributes {labels.attributes} but PA-HMDB51 "
                f"({pa.path}) has {pa.attributes}: pass attributes so that both name the same ones in the same order."
            )
        return {"train": labels, "val": labels, "test": pa}
