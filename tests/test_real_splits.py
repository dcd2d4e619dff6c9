"""The real datasets' splits: validation carved from the training list by group, the test list kept
for ``test`` only, PA-HMDB51's standard protocol, and the label files of the paper's code.

The trees are tiny (8 frames of 32x32 per video) with the official file-name patterns, so the
grouping rules (UCF101 ``gXX``, HMDB51 source video) are exercised as on the real datasets.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import av
import numpy as np
import pytest

from anonpriv.data import HMDB51Source, UCF101Source, VideoPrivacyDataModule, load_privacy_labels
from anonpriv.data.hmdb51 import PAHMDB51Source, source_video_of
from anonpriv.data.privacy_labels import DEFAULT_ATTRIBUTES

ATTRIBUTES = list(DEFAULT_ATTRIBUTES)
UCF_CLASSES = ["ApplyEyeMakeup", "Basketball"]
HMDB_CLASSES = ["brush_hair", "hug"]
# Three source films; each has clips in both classes (so grouping must span classes).
SOURCES = ["April_09", "Pirates_of_the_Caribbean", "Veoh_Alpha_Dog"]


def write_video(path: Path, frames: int = 8, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), 20 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def small(**overrides) -> dict:
    return dict(num_frames=4, height=16, width=16, frame_stride=2, test_clips=2) | overrides


def ids(source, split: str) -> set[str]:
    return {record.video_id for record in source.records(split)}


# -- UCF101: 2 classes x 6 groups x 2 clips; groups 1-2 are the test list --------------------------
def build_ucf(root: Path) -> dict[str, list[str]]:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    train, test, rows = [], [], ["video," + ",".join(ATTRIBUTES)]
    for action, cls in enumerate(UCF_CLASSES):
        for group in range(1, 7):
            for clip in (1, 2):
                relative = f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"
                write_video(root / "UCF-101" / relative)
                (test if group <= 2 else train).append((relative, action))
                rows.append(f"{relative},1,0,1,0,{clip % 2}")
    (lists / "trainlist01.txt").write_text("".join(f"{r} {a + 1}\n" for r, a in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r, _ in test))
    (root / "privacy_labels.csv").write_text("\n".join(rows) + "\n")
    return {"train": [r[:-4] for r, _ in train], "test": [r[:-4] for r, _ in test]}


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf_splits")
    return root, build_ucf(root)


def ucf_group(video_id: str) -> str:
    return re.search(r"_g(\d+)_c", video_id).group(1)


def test_ucf101_val_is_carved_from_the_train_list_by_group_and_never_from_the_test_list(ucf):
    root, listed = ucf
    source = UCF101Source(root=str(root), val_fraction=0.25, **small())
    train, val, test = ids(source, "train"), ids(source, "val"), ids(source, "test")
    assert test == set(listed["test"])  # the official test list, whole, for test only
    assert val and train and not val & test and not train & test and not train & val
    assert train | val == set(listed["train"])
    val_groups, train_groups = {ucf_group(v) for v in val}, {ucf_group(v) for v in train}
    assert not val_groups & train_groups  # no group straddles train and val
    assert len(val) == 4 and len(val_groups) == 1  # 25% of 16 videos: one group, in both classes
    assert {v.split("/")[0] for v in val} == set(UCF_CLASSES)
    # The DataModule's val loader serves the carved split, not the test list.
    datamodule = VideoPrivacyDataModule(source, batch_size=2)
    datamodule.setup("fit")
    assert {r.video_id for r in datamodule.split("val").records} == val
    assert len(datamodule.split("val")) == len(val) * source.val_clips


def test_ucf101_validation_split_is_deterministic_and_follows_val_fraction(ucf):
    root, _ = ucf
    first = UCF101Source(root=str(root), val_fraction=0.25, **small())
    again = UCF101Source(root=str(root), val_fraction=0.25, **small())
    assert ids(first, "val") == ids(again, "val") and ids(first, "train") == ids(again, "train")
    larger = UCF101Source(root=str(root), val_fraction=0.5, **small())
    assert len(ids(larger, "val")) == 8 and ids(first, "val") <= ids(larger, "val")
    with pytest.raises(ValueError, match=r"val_fraction=0 must be in \(0, 1\)"):
        UCF101Source(root=str(root), val_fraction=0, **small())


def test_validation_needs_two_training_groups(ucf, tmp_path):
    import shutil

    root = tmp_path / "ucf"
    shutil.copytree(ucf[0], root)
    listing = root / "ucfTrainTestlist" / "trainlist01.txt"
    listing.write_text("".join(line + "\n" for line in listing.read_text().splitlines() if "_g03_" in line))
    with pytest.raises(Exception, match=r"1 group\(s\).*at least two"):
        UCF101Source(root=str(root), on_error="skip", **small())


# -- HMDB51: 2 classes; each source film has clips 0-2 in each class ------------------------------------
def hmdb_name(source: str, cls: str, clip: int) -> str:
    return f"{source}_{cls}_u_nm_np1_fr_goo_{clip}.avi"


# Split 1 role of (source, clip): film 0 clip 2 is unused, film 2 is the test set, the rest trains.
def hmdb_role(source_index: int, clip: int) -> str:
    if source_index == 2:
        return "2"
    return "0" if (source_index, clip) == (0, 2) else "1"


def build_hmdb(root: Path, splits_folder: str = "testTrainMulti_7030_splits") -> dict[str, list[str]]:
    (root / splits_folder).mkdir(parents=True)
    roles: dict[str, list[str]] = {"1": [], "2": [], "0": []}
    rows = ["video," + ",".join(ATTRIBUTES)]
    for cls in HMDB_CLASSES:
        lines = []
        for index, source in enumerate(SOURCES):
            for clip in range(3):
                name = hmdb_name(source, cls, clip)
                write_video(root / "hmdb51_org" / cls / name)
                lines.append(f"{name} {hmdb_role(index, clip)} \n")
                roles[hmdb_role(index, clip)].append(f"{cls}/{name[:-4]}")
                rows.append(f"{cls}/{name},0,0,0,0,0")  # VP-HMDB-style labels: all 0
        for k in (1, 2, 3):
            (root / splits_folder / f"{cls}_test_split{k}.txt").write_text("".join(lines))
    (root / "privacy_labels.csv").write_text("\n".join(rows) + "\n")
    return {"train": roles["1"], "test": roles["2"], "unused": roles["0"]}


@pytest.fixture(scope="module")
def hmdb(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmdb_splits")
    return root, build_hmdb(root)


def test_hmdb51_source_video_of_a_file_name():
    assert source_video_of("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi") == "april_09"
    assert source_video_of("hug/Pirates_of_the_Caribbean_hug_f_cm_np2_le_med_12.avi") == "pirates_of_the_caribbean"
    assert source_video_of("hug/odd_name.avi") == "hug/odd_name"  # no pattern: its own group


def test_hmdb51_val_is_carved_from_the_train_list_by_source_video(hmdb):
    root, listed = hmdb
    source = HMDB51Source(root=str(root), val_fraction=0.3, **small())
    train, val, test = ids(source, "train"), ids(source, "val"), ids(source, "test")
    assert test == set(listed["test"])
    assert val and train and not val & test and not train & test and not train & val
    assert train | val == set(listed["train"])  # unused ("0") videos stay out
    film = {v: source_video_of(v) for v in train | val}
    assert {film[v] for v in val}.isdisjoint({film[v] for v in train})  # no film straddles train and val
    assert {v.split("/")[0] for v in val} == set(HMDB_CLASSES)  # a film's clips in every class go together


def test_hmdb51_splits_in_hmdbTrainTestlist_are_found_without_splits_dir(tmp_path):
    listed = build_hmdb(tmp_path, splits_folder="hmdbTrainTestlist")
    source = HMDB51Source(root=str(tmp_path), **small())
    assert source.splits_dir().name == "hmdbTrainTestlist"
    assert ids(source, "test") == set(listed["test"])


# -- PA-HMDB51 ------------------------------------------------------------------------------------------
def pa_videos() -> dict[str, list[str]]:
    """PA-HMDB51's subset: per class, one training video (clip 0, of another film in each class), one
    test video and the unused one."""
    return {cls: [hmdb_name(SOURCES[1 - i], cls, 0), hmdb_name(SOURCES[2], cls, 1), hmdb_name(SOURCES[0], cls, 2)]
            for i, cls in enumerate(HMDB_CLASSES)}


def write_pa_folder(folder: Path) -> set[str]:
    folder.mkdir()
    entry = {"face": [[0, 3, 2], [4, 7, 0]], "skin_color": [[0, 7, [1, 2]]], "gender": [[0, 7, 1]],
             "nudity": [[0, 7, 1]], "relationship": [[2, 5, 1]], "note": "", "review": False}
    for cls, names in pa_videos().items():
        (folder / f"{cls}.json").write_text(json.dumps({name: entry for name in names}))
    return {f"{cls}/{name[:-4]}" for cls, names in pa_videos().items() for name in names}


def test_pa_hmdb51_standard_protocol_tests_on_every_labelled_video_and_trains_on_none(hmdb, tmp_path):
    root, listed = hmdb
    pa = write_pa_folder(tmp_path / "PrivacyAttributes")
    source = PAHMDB51Source(root=str(root), pa_labels=str(tmp_path / "PrivacyAttributes"), **small())
    train, val, test = ids(source, "train"), ids(source, "val"), ids(source, "test")
    assert test == pa  # all of them, whatever HMDB51 split marks them (train, test or unused)
    assert not (train | val) & pa and not train & val
    everything = set(listed["train"]) | set(listed["test"]) | set(listed["unused"])
    assert train | val == everything - pa  # the rest of HMDB51 trains
    assert source.privacy_names == ATTRIBUTES
    for record in source.records("test"):  # test labels from PA-HMDB51's frame ranges
        assert record.privacy.tolist() == [1, 1, 1, 1, 1]
    for record in source.records("train") + source.records("val"):  # training labels from VP-HMDB
        assert record.privacy.tolist() == [0, 0, 0, 0, 0]


def test_pa_hmdb51_per_split_variant_is_named_and_reports_what_it_leaves_out(hmdb, tmp_path):
    root, _ = hmdb
    pa = write_pa_folder(tmp_path / "PrivacyAttributes")
    with pytest.warns(UserWarning, match="2 PA-HMDB51 videos are marked unused"):
        source = PAHMDB51Source(root=str(root), pa_labels=str(tmp_path / "PrivacyAttributes"), protocol="per_split",
                                val_fraction=0.5, **small())
    assert ids(source, "test") == {v for v in pa if SOURCES[2] in v}
    assert ids(source, "train") | ids(source, "val") == {v for v in pa if v.endswith("_0")}
    assert ids(source, "train") and ids(source, "val")
    assert set(source.unused) == {v for v in pa if v.endswith("_2")}


def test_pa_hmdb51_refuses_unset_labels_and_mismatched_attributes(hmdb, tmp_path):
    root, _ = hmdb
    write_pa_folder(tmp_path / "PrivacyAttributes")
    with pytest.raises(ValueError, match="pa_labels is not set"):
        PAHMDB51Source(root=str(root), pa_labels="???")
    reordered = tmp_path / "vp.csv"
    lines = (root / "privacy_labels.csv").read_text().splitlines()
    reordered.write_text("\n".join(["video,gender,face,skin_color,nudity,relationship"] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match="pass attributes so that both name the same ones"):
        PAHMDB51Source(root=str(root), pa_labels=str(tmp_path / "PrivacyAttributes"), privacy_labels=str(reordered),
                       **small())


# -- label files of the paper's code ----------------------------------------------------------------------
def test_pickle_labels_default_to_the_papers_attribute_order(ucf, tmp_path):
    root, listed = ucf
    # As released: "Class/v_X.mp4" -> int64 (1, 5), while the videos on disk are .avi.
    labels = {f"{v}.mp4": np.array([[1, 0, int("g03" in v), 0, 1]], dtype=np.int64)
              for v in listed["train"] + listed["test"]}
    path = tmp_path / "ucf101_privacy_attribute_label.pickle"
    path.write_bytes(pickle.dumps(labels))
    loaded = load_privacy_labels(path)
    assert loaded.attributes == ["face", "skin_color", "gender", "nudity", "relationship"]
    source = UCF101Source(root=str(root), privacy_labels=str(path), attributes=None, **small())
    assert source.privacy_names == ATTRIBUTES
    record = next(r for r in source.records("train") + source.records("val") if "g03" in r.video_id)
    assert record.privacy.tolist() == [1, 0, 1, 0, 1]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"], ids=["no-bom", "bom"])
def test_paper_csv_schema_parses_with_and_without_bom(tmp_path, encoding):
    path = tmp_path / "vp_ucf101_privacy_attribute_label.csv"
    path.write_text(
        "File Path,Array Values\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.mp4,[[1 1 0 0 0]]\n"
        '/data/UCF-101/Basketball/v_Basketball_g01_c02.avi,"[0, 1, 1, 0, 1]"\n',
        encoding=encoding,
    )
    labels = load_privacy_labels(path)
    assert labels.attributes == ATTRIBUTES
    assert labels.lookup("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01").tolist() == [1, 1, 0, 0, 0]
    assert labels.lookup("Basketball/v_Basketball_g01_c02").tolist() == [0, 1, 1, 0, 1]
    assert load_privacy_labels(path, ["a", "b", "c", "d", "e"]).attributes == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="5 label columns but 2 attribute names"):
        load_privacy_labels(path, ["face", "gender"])


def test_pa_hmdb51_config_parses_and_instantiates(hmdb, tmp_path):
    import yaml
    from jsonargparse import ArgumentParser

    root, _ = hmdb
    pa = write_pa_folder(tmp_path / "PrivacyAttributes")
    parser = ArgumentParser()
    parser.add_class_arguments(VideoPrivacyDataModule, "data")
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "data" / "pa_hmdb51.yaml").read_text())
    config["source"]["init_args"] |= {"root": str(root), "pa_labels": str(tmp_path / "PrivacyAttributes"),
                                      "height": 16, "width": 16, "num_frames": 4}
    datamodule = parser.instantiate_classes(parser.parse_object({"data": config})).data
    assert datamodule.num_actions == 2 and datamodule.privacy_names == ATTRIBUTES
    assert {r.video_id for r in datamodule.source.records("test")} == pa
