"""HMDB51 (Kuehne et al. 2011) with video-level privacy labels (VP-HMDB / PA-HMDB51).

Expected under ``root`` (the official archives extracted)::

    root/
      hmdb51_org/<class>/<video>.avi                         (hmdb51_org.rar with each class .rar
                                                             extracted; class folders may also sit in root)
      testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   (test_train_splits.rar; or in root)
      privacy_labels.csv                                      (or pass privacy_labels: a path)

Each split file lists one class's videos as ``<video>.avi <0|1|2>``: 1 train, 2 test, 0 not used in
that split. Action names are the class parts of the split file names, sorted. Only split ``k``'s
files are read, so videos of other splits' test sets never enter training (the split files of
different ``k`` must not be merged); a video marked both train and test is an error.

PA-HMDB51 (592 HMDB51 videos with frame-range labels) is read with ``privacy_labels`` pointing at
its folder of ``<class>.json`` files and ``on_error: skip`` (the other HMDB51 videos have no labels
and are reported as skipped); train on the rest of HMDB51 with ``exclude_videos`` set to that folder.
"""

from __future__ import annotations

from pathlib import Path

from anonpriv.data.video_dataset import DatasetError, VideoFolderSource

ROLES = {"1": "train", "2": "test"}


class HMDB51Source(VideoFolderSource):
    """HMDB51 split 1, 2 or 3 from the official per-class split files; options in
    :class:`VideoFolderSource`."""

    dataset_name = "HMDB51"
    video_dir_candidates = ("hmdb51_org", "hmdb51", "HMDB51", "videos", ".")
    split_dir_candidates = ("testTrainMulti_7030_splits", "test_train_splits", "splits", ".")

    @classmethod
    def expected_layout(cls) -> str:
        return ("the HMDB51 class folders (hmdb51_org/<class>/*.avi) and the split files "
                "(testTrainMulti_7030_splits/<class>_test_split<k>.txt)")

    def looks_like_splits_dir(self, folder: Path) -> bool:
        return any(folder.glob("*_test_split1.txt"))

    def split_files(self) -> dict[str, Path]:
        """``{class: split file}`` of this split, classes sorted."""
        suffix = f"_test_split{self.split}.txt"
        files = {p.name[: -len(suffix)]: p for p in self.splits_dir().glob(f"*{suffix}")}
        if not files:
            raise FileNotFoundError(f"no HMDB51 split files *{suffix} in {str(self.splits_dir())!r}: extract the "
                                    "official test_train_splits.rar there.")
        return dict(sorted(files.items()))

    def read_split_lists(self) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        files = self.split_files()
        lists: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
        every: list[str] = []
        for action, (name, path) in enumerate(files.items()):
            roles: dict[str, str] = {}
            for line_number, line in enumerate(path.read_text().splitlines(), start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise DatasetError(f"{path.name} line {line_number}: expected '<video>.avi <0|1|2>', got {line!r}.")
                relative = f"{name}/{fields[0]}"
                role = ROLES.get(fields[1])  # None: not used in this split
                if role and roles.get(relative, role) != role:
                    raise DatasetError(f"{path.name}: {fields[0]} is marked both train and test.")
                if role:
                    roles[relative] = role
                every.append(relative)
            for relative, role in roles.items():
                lists[role].append((relative, action))
        return list(files), lists, every
