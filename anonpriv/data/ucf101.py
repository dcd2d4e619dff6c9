"""UCF101 (Soomro et al. 2012) with video-level privacy labels (VP-UCF style).

Expected under ``root`` (the official archives extracted side by side)::

    root/
      UCF-101/<Class>/v_<Class>_g<group>_c<clip>.avi      (UCF101.rar; class folders may also sit in root)
      ucfTrainTestlist/classInd.txt                       (UCF101TrainTestSplits-RecognitionTask.zip;
      ucfTrainTestlist/trainlist0{1,2,3}.txt               the split files may also sit in root)
      ucfTrainTestlist/testlist0{1,2,3}.txt
      privacy_labels.csv                                  (or pass privacy_labels: a path)

``classInd.txt`` lines are ``<index> <Class>`` with 1-based indices; actions are numbered
``index - 1``. ``trainlist0N.txt`` lines are ``<Class>/<video>.avi <index>``, ``testlist0N.txt``
lines ``<Class>/<video>.avi``. The class is taken from the folder part of the path (file names
spell some classes in another case, e.g. ``HandstandPushups/v_HandStandPushups_g01_c01.avi``);
a train-list index that disagrees with its folder's class is an error.

Splits: ``test`` is ``testlist0N.txt``; ``train`` and ``val`` divide ``trainlist0N.txt`` by group:
the ``gXX`` of ``v_<Class>_gXX_cYY`` (25 groups; the clips of one group share actors and
background, and the official splits keep each group on one side). The groups held out for
validation are held out in every class, as the official test groups are.
"""

from __future__ import annotations

import re
from pathlib import Path

from anonpriv.data.privacy_labels import video_key
from anonpriv.data.video_dataset import VideoFolderSource
from anonpriv.data.video_index import DatasetError

GROUP = re.compile(r"_g(\d+)_c\d+$", re.IGNORECASE)


class UCF101Source(VideoFolderSource):
    """UCF101 split 1, 2 or 3 from the official list files; options in :class:`VideoFolderSource`."""

    dataset_name = "UCF101"
    video_dir_candidates = ("UCF-101", "UCF101", "videos", ".")
    split_dir_candidates = ("ucfTrainTestlist", "UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist", "splits", ".")

    @classmethod
    def expected_layout(cls) -> str:
        return ("the UCF101 class folders (UCF-101/<Class>/*.avi) and the split files "
                "(ucfTrainTestlist/classInd.txt, trainlist0N.txt, testlist0N.txt)")

    def looks_like_splits_dir(self, folder: Path) -> bool:
        return (folder / "classInd.txt").is_file()

    def group_of(self, relative: str) -> str:
        """``gXX`` of ``<Class>/v_<Class>_gXX_cYY.avi`` (the same group number in every class);
        a name without one is its own group."""
        match = GROUP.search(video_key(relative))
        return f"g{int(match.group(1)):02d}" if match else video_key(relative)

    def _lines(self, name: str) -> list[tuple[int, list[str]]]:
        path = self.splits_dir() / name
        if not path.is_file():
            raise FileNotFoundError(f"UCF101 split file {str(path)!r} is missing: extract the official "
                                    "UCF101TrainTestSplits-RecognitionTask.zip there.")
        return [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]

    def read_class_index(self) -> list[str]:
        """Class names in ``classInd.txt`` order (action ``i`` is the line with index ``i + 1``)."""
        entries = {}
        for line_number, fields in self._lines("classInd.txt"):
            if len(fields) != 2 or not fields[0].isdigit():
                raise DatasetError(f"classInd.txt line {line_number}: expected '<index> <Class>', got {' '.join(fields)!r}.")
            entries[int(fields[0])] = fields[1]
        if sorted(entries) != list(range(1, len(entries) + 1)):
            raise DatasetError("classInd.txt: indices must run 1, 2, ..., N without gaps.")
        return [entries[i] for i in range(1, len(entries) + 1)]

    def read_split_lists(self) -> tuple[list[str], dict[str, list[tuple[str, int]]], list[str]]:
        names = self.read_class_index()
        by_name = {name: i for i, name in enumerate(names)}
        by_lower = {name.lower(): i for i, name in enumerate(names)}

        def action_of(relative: str, where: str) -> int:
            folder = relative.replace("\\", "/").split("/")[0]
            action = by_name.get(folder, by_lower.get(folder.lower()))
            if action is None or "/" not in relative:
                raise DatasetError(f"{where}: {relative!r} is not '<Class>/<video>' with a class of classInd.txt.")
            return action

        lists: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
        train_file = f"trainlist{self.split:02d}.txt"
        for line_number, fields in self._lines(train_file):
            where = f"{train_file} line {line_number}"
            action = action_of(fields[0], where)
            if len(fields) > 1 and int(fields[1]) - 1 != action:
                raise DatasetError(f"{where}: label {fields[1]} disagrees with the folder class "
                                   f"{names[action]!r} (index {action + 1} in classInd.txt).")
            lists["train"].append((fields[0], action))
        test_file = f"testlist{self.split:02d}.txt"
        for line_number, fields in self._lines(test_file):
            lists["test"].append((fields[0], action_of(fields[0], f"{test_file} line {line_number}")))
        overlap = {v for v, _ in lists["train"]} & {v for v, _ in lists["test"]}
        if overlap:
            raise DatasetError(f"split {self.split}: {len(overlap)} videos are in both {train_file} and {test_file}, "
                               f"e.g. {sorted(overlap)[:3]}.")
        return names, lists, [v for entries in lists.values() for v, _ in entries]
