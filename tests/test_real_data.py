"""Real-video sources on tiny UCF101- and HMDB51-shaped trees of real encoded videos.

Each video is 24 frames of 40x48 at 25 fps: red channel 200 everywhere (catches BGR/RGB swaps),
green channel ``10 * frame index`` (lets the tests check which frames a clip holds).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from anonpriv.data import (
    DatasetError,
    HMDB51Source,
    SkippedVideosWarning,
    UCF101Source,
    VideoPrivacyDataModule,
    VideoReadError,
    load_privacy_labels,
)
from anonpriv.data.clip_sampling import clip_span, evenly_spaced_clip_indices, random_clip_indices
from anonpriv.data.privacy_labels import frame_ranges_to_label
from anonpriv.data.video_io import probe_video, read_frames

FRAMES, HEIGHT, WIDTH, FPS = 24, 40, 48, 25
ATTRIBUTES = ["face", "skin_color", "gender", "nudity", "relationship"]
UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "HandstandPushups"]
HMDB_CLASSES = ["brush_hair", "hug", "wave"]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write_video(path: Path, frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[..., 0] = 200
            image[..., 1] = (10 * i) % 256
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def privacy_of(video_id: str) -> list[int]:
    """Deterministic labels per video, different across videos."""
    code = sum(map(ord, video_id))
    return [(code >> bit) & 1 for bit in range(len(ATTRIBUTES))]


def write_csv_labels(path: Path, video_ids: list[str]) -> None:
    rows = ["video," + ",".join(ATTRIBUTES)]
    rows += [f"{v}.avi," + ",".join(map(str, privacy_of(v))) for v in video_ids]
    path.write_text("\n".join(rows) + "\n")


def build_ucf(root: Path) -> dict[str, list[str]]:
    """3 classes x 4 groups; split 1 trains on groups 3-4, tests on 1-2. Returns ids per list."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    train, test = [], []
    for action, cls in enumerate(UCF_CLASSES):
        file_cls = "HandStandPushups" if cls == "HandstandPushups" else cls  # the official case trap
        for group in range(1, 5):
            relative = f"{cls}/v_{file_cls}_g{group:02d}_c01.avi"
            write_video(root / "UCF-101" / relative)
            (test if group <= 2 else train).append((relative, action))
    (lists / "trainlist01.txt").write_text("".join(f"{r} {a + 1}\n" for r, a in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r, _ in test))
    ids = {"train": [r[:-4] for r, _ in train], "test": [r[:-4] for r, _ in test]}
    write_csv_labels(root / "privacy_labels.csv", ids["train"] + ids["test"])
    return ids


def build_hmdb(root: Path) -> None:
    """3 classes x 4 videos; in split k video k-1 is the test video, video 3 is never used."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    labels = {}
    for cls in HMDB_CLASSES:
        for i in range(4):
            write_video(root / "hmdb51_org" / cls / f"{cls}_clip_{i}.avi")
            labels[f"{cls}/{cls}_clip_{i}"] = privacy_of(f"{cls}_clip_{i}")
        for k in (1, 2, 3):
            roles = ["2" if i == k - 1 else ("0" if i == 3 else "1") for i in range(4)]
            (splits / f"{cls}_test_split{k}.txt").write_text(
                "".join(f"{cls}_clip_{i}.avi {r} \n" for i, r in enumerate(roles)))
    (root / "privacy_labels.json").write_text(json.dumps({"attributes": ATTRIBUTES, "videos": labels}))


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    return root, build_ucf(root)


@pytest.fixture(scope="module")
def hmdb_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmdb")
    build_hmdb(root)
    return root


def small(**overrides):
    return dict(num_frames=4, height=32, width=32, frame_stride=2, test_clips=3) | overrides


def copy_tree(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


# -- video_io and clip sampling --------------------------------------------------------------------
def test_probe_and_read_frames_give_rgb_and_the_right_frames(ucf_tree):
    root, ids = ucf_tree
    path = root / "UCF-101" / f"{ids['train'][0]}.avi"
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.fps) == (FRAMES, WIDTH, HEIGHT, FPS)
    frames = read_frames(path, [5, 0, 5, 23])
    assert frames.shape == (4, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert abs(int(frames[..., 0].mean()) - 200) <= 3  # red stays in channel 0: RGB, not BGR
    assert np.allclose(frames[:, 20, 20, 1], [50, 0, 50, 230], atol=4)


def test_read_frames_past_the_end_repeats_the_last_frame(ucf_tree):
    root, ids = ucf_tree
    frames = read_frames(root / "UCF-101" / f"{ids['train'][0]}.avi", [22, 40])
    assert np.array_equal(frames[1], read_frames(root / "UCF-101" / f"{ids['train'][0]}.avi", [23])[0])


def test_clip_indices():
    assert clip_span(4, 2) == 7
    torch.manual_seed(0)
    starts = {int(random_clip_indices(24, 4, 2)[0]) for _ in range(200)}
    assert starts == set(range(0, 18))  # every start from 0 to 24 - 7
    clips = evenly_spaced_clip_indices(24, 4, 2, 3)
    assert clips.tolist() == [[0, 2, 4, 6], [8, 10, 12, 14], [17, 19, 21, 23]]
    assert evenly_spaced_clip_indices(5, 4, 2, 1).tolist() == [[0, 2, 4, 4]]  # short video: last frame repeats


# -- UCF101 ----------------------------------------------------------------------------------------
def test_ucf101_labels_shapes_and_test_clips(ucf_tree):
    root, ids = ucf_tree
    source = UCF101Source(root=str(root), **small())
    assert source.action_names == UCF_CLASSES and source.privacy_names == ATTRIBUTES
    assert source.clip_shape == (4, 32, 32)
    train, val, test = source.dataset("train"), source.dataset("val"), source.dataset("test")
    assert len(train) == 3 and len(val) == 3 and len(test) == 6 * 3  # val: one of the two training groups
    for split in ("train", "val"):
        actions, privacy = source.dataset(split).labels()
        for index, record in enumerate(source.records(split)):
            assert record.video_id in ids["train"]
            assert UCF_CLASSES[actions[index]] == record.video_id.split("/")[0]  # class from the folder
            assert privacy[index].tolist() == privacy_of(record.video_id)
    item = train[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
    assert 0 <= item["video"].min() and item["video"].max() <= 1
    assert item["action"].dtype == torch.int64 and item["action"].ndim == 0
    assert item["privacy"].shape == (5,) and item["privacy"].dtype == torch.float32
    clips = [test[i] for i in range(3)]  # the three clips of the first test video
    assert len({c["id"] for c in clips}) == 1
    green = [float(c["video"][1, 0].mean()) * 255 for c in clips]  # first frame of each clip: 0, 8, 17
    assert np.allclose(green, [0, 80, 170], atol=6)
    assert np.allclose(test.labels()[0], np.repeat(test.labels()[0][::3], 3))


def test_ucf101_datamodule_with_a_worker_finishes(ucf_tree):
    root, _ = ucf_tree
    # drop_last=False: every one of the 3 training clips must come through the worker.
    datamodule = VideoPrivacyDataModule(UCF101Source(root=str(root), **small()), batch_size=2, num_workers=1,
                                        drop_last=False)
    datamodule.setup("fit")
    result = {}

    def consume():
        result["batches"] = [batch for batch in datamodule.train_dataloader()]

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "DataLoader with a worker did not finish within 60 s"
    batches = result["batches"]
    assert sum(len(b["id"]) for b in batches) == 3
    assert batches[0]["video"].shape == (2, 3, 4, 32, 32) and batches[0]["privacy"].shape == (2, 5)


def test_missing_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*classInd"):
        UCF101Source(root=str(tmp_path / "nowhere"))


def test_missing_privacy_labels_say_where_to_put_them(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    (root / "privacy_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="privacy_labels.csv"):
        UCF101Source(root=str(root), **small())


def test_missing_video_raises_or_is_skipped_and_counted(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    gone = "Basketball/v_Basketball_g03_c01.avi"
    (root / "UCF-101" / gone).unlink()
    with pytest.raises(DatasetError, match=r"1 missing .*v_Basketball_g03_c01"):
        UCF101Source(root=str(root), **small())
    with pytest.warns(SkippedVideosWarning, match=r"1 missing"):
        source = UCF101Source(root=str(root), on_error="skip", **small())
    assert source.skipped["missing"] == [gone]
    assert len(source.dataset("train")) + len(source.dataset("val")) == 5


def test_corrupt_video_raises_or_is_skipped_and_counted(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    broken = root / "UCF-101" / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DatasetError, match=r"1 unreadable .*v_ApplyEyeMakeup_g01_c01"):
        UCF101Source(root=str(root), **small())
    with pytest.warns(SkippedVideosWarning, match=r"1 unreadable"):
        source = UCF101Source(root=str(root), on_error="skip", **small())
    assert len(source.dataset("test")) == 5 * 3


def test_video_broken_after_construction_raises_naming_it(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    source = UCF101Source(root=str(root), **small())
    record = source.records("train")[0]
    Path(record.path).write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoReadError, match=Path(record.path).name):
        source.dataset("train")[0]
    loader = torch.utils.data.DataLoader(source.dataset("train"), batch_size=6, num_workers=1, timeout=60)
    with pytest.raises(VideoReadError, match=Path(record.path).name):  # from a worker: raised, not hung
        next(iter(loader))


def test_labels_that_disagree_with_the_split(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    lines = (root / "privacy_labels.csv").read_text().splitlines()
    lines = [line for line in lines if "g04" not in line.split(",")[0] or "Basketball" not in line]
    lines.append("Fencing/v_Fencing_g01_c01.avi,1,0,1,0,1")  # a video no split lists
    (root / "privacy_labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"1 unlabelled .*Basketball/v_Basketball_g04_c01[\s\S]*1 unknown_labels"):
        UCF101Source(root=str(root), **small())
    with pytest.warns(SkippedVideosWarning, match="1 unlabelled"):
        source = UCF101Source(root=str(root), on_error="skip", **small())
    assert source.skipped["unknown_labels"] == ["fencing/v_fencing_g01_c01"]
    assert len(source.dataset("train")) + len(source.dataset("val")) == 5


def test_train_list_label_that_disagrees_with_the_folder_is_an_error(ucf_tree, tmp_path):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    listing = root / "ucfTrainTestlist" / "trainlist01.txt"
    listing.write_text(listing.read_text().replace("g03_c01.avi 1", "g03_c01.avi 2", 1))
    with pytest.raises(DatasetError, match="disagrees with the folder class"):
        UCF101Source(root=str(root), **small())


def test_ucf101_config_fits_through_the_cli(ucf_tree, tmp_path):
    from anonpriv.cli import AnonprivCLI

    root, _ = ucf_tree
    AnonprivCLI(args=[
        "fit", "--data", str(CONFIGS / "data" / "ucf101.yaml"), "--model", str(CONFIGS / "method" / "raw.yaml"),
        "--trainer", str(CONFIGS / "trainer" / "cpu.yaml"),
        "--data.source.init_args.root", str(root),
        "--data.source.init_args.height", "32", "--data.source.init_args.width", "32",
        "--data.source.init_args.num_frames", "4", "--data.num_workers", "0", "--data.batch_size", "2",
        "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path), "--metrics.results_dir", str(tmp_path / "results"),
    ])


# -- HMDB51 ----------------------------------------------------------------------------------------
def test_hmdb51_reads_only_its_split_and_never_leaks_test_videos(hmdb_tree):
    test_sets = {}
    for k in (1, 2, 3):
        source = HMDB51Source(root=str(hmdb_tree), split=k, **small())
        assert source.action_names == HMDB_CLASSES
        train_ids = {r.video_id for r in source.records("train")} | {r.video_id for r in source.records("val")}
        test_ids = {r.video_id for r in source.records("test")}
        assert not train_ids & test_ids
        assert len(train_ids) == 6 and len(test_ids) == 3
        assert not any(v.endswith("_clip_3") for v in train_ids | test_ids)  # "0" = unused in this split
        test_sets[k] = test_ids
        for record in source.records("train") + source.records("val"):
            assert HMDB_CLASSES[record.action] == record.video_id.split("/")[0]
            assert record.privacy.tolist() == privacy_of(record.video_id.split("/")[1])
    assert test_sets[1] != test_sets[2] != test_sets[3]
    item = HMDB51Source(root=str(hmdb_tree), **small()).dataset("test")[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["id"] == "brush_hair/brush_hair_clip_0"


def test_hmdb51_config_parses_and_instantiates(hmdb_tree):
    import yaml
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(VideoPrivacyDataModule, "data")
    config = yaml.safe_load((CONFIGS / "data" / "hmdb51.yaml").read_text())
    config["source"]["init_args"]["root"] = str(hmdb_tree)
    parsed = parser.parse_object({"data": config})
    datamodule = parser.instantiate_classes(parsed).data
    assert datamodule.num_actions == 3 and datamodule.privacy_names == ATTRIBUTES


# -- privacy-label formats ---------------------------------------------------------------------------
def test_pa_hmdb_frame_ranges_become_video_labels(tmp_path):
    assert frame_ranges_to_label([[0, 9, 0], [10, 12, 2]]) == 1.0  # any frame
    assert frame_ranges_to_label([[0, 9, 0], [10, 12, 2]], min_fraction=0.5) == 0.0  # 3 of 13 frames
    assert frame_ranges_to_label([[0, 4, [1, 2]], [5, 9, 0]], min_fraction=0.5) == 1.0  # list of levels
    assert frame_ranges_to_label([[0, 30, 0]]) == 0.0
    folder = tmp_path / "pa_hmdb"
    folder.mkdir()
    entry = {"face": [[0, 5, 1], [6, 20, 0]], "gender": [[0, 20, 0]], "nudity": [[0, 20, 1]],
             "relationship": [[0, 20, 0]], "skin_color": [[0, 20, 1]], "note": "", "review": False}
    (folder / "hug.json").write_text(json.dumps({"hug_clip_0.avi": entry}))
    labels = load_privacy_labels(folder)
    assert labels.attributes == ATTRIBUTES
    assert labels.lookup("hug/hug_clip_0").tolist() == [1, 1, 0, 1, 0]
    assert load_privacy_labels(folder, min_fraction=0.5).lookup("hug/HUG_clip_0.mp4").tolist() == [0, 1, 0, 1, 0]


def test_exclude_videos_leaves_a_label_folders_videos_out(hmdb_tree, tmp_path):
    # PA-HMDB51 itself is read by PAHMDB51Source (tests/test_real_splits.py); exclusion stays generic.
    folder = tmp_path / "pa_hmdb"
    folder.mkdir()
    entry = {name: [[0, 23, 1]] for name in ATTRIBUTES}
    (folder / "hug.json").write_text(json.dumps({"hug_clip_0.avi": entry, "hug_clip_1.avi": entry}))
    rest = HMDB51Source(root=str(hmdb_tree), exclude_videos=str(folder), **small())
    kept = {r.video_id for split in ("train", "val", "test") for r in rest.records(split)}
    assert kept.isdisjoint({"hug/hug_clip_0", "hug/hug_clip_1"})
    assert sorted(rest.excluded) == ["hug/hug_clip_0", "hug/hug_clip_1"]


def test_label_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("video,face\nA/x.avi,1\nA/y.avi,3\n")
    with pytest.raises(ValueError, match="line 3.*not 0 or 1"):
        load_privacy_labels(bad)
    bad.write_text("name,face\nA/x.avi,1\n")
    with pytest.raises(ValueError, match="header"):
        load_privacy_labels(bad)
    import pickle

    pickled = tmp_path / "vp_ucf.pkl"
    pickled.write_bytes(pickle.dumps({"A/x.mp4": np.array([[1, 0]]), "A/y.mp4": np.array([[0, 1]])}))
    with pytest.raises(ValueError, match="2 label columns but 5 attribute names.*name them in column order"):
        load_privacy_labels(pickled)  # the default five names do not fit two columns
    assert load_privacy_labels(pickled, ["face", "gender"]).lookup("A/y").tolist() == [0, 1]


def test_truncated_video_raises_at_decode_time_naming_it(tmp_path):
    path = tmp_path / "cut.avi"
    write_video(path, frames=60)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header still lists 60 frames
    info = probe_video(path)
    assert info.num_frames == 60
    assert read_frames(path, [2]).shape == (1, HEIGHT, WIDTH, 3)  # the intact part still reads
    with pytest.raises(VideoReadError, match="cut.avi.*decoded only"):
        read_frames(path, [55], expected_frames=info.num_frames)


@pytest.mark.parametrize("workers", [0, 1])
def test_truncated_video_is_found_by_the_probe_and_skipped(ucf_tree, tmp_path, workers):
    root = copy_tree(ucf_tree[0], tmp_path / "ucf")
    cut = root / "UCF-101" / "Basketball/v_Basketball_g03_c01.avi"  # a training video
    write_video(cut, frames=80)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # opens, header lists 80 frames, holds about 40
    assert probe_video(cut).num_frames == 80
    with pytest.raises(DatasetError, match=r"1 unreadable .*v_Basketball_g03_c01.*truncated"):
        UCF101Source(root=str(root), **small(num_frames=8, frame_stride=8))
    with pytest.warns(SkippedVideosWarning, match=r"1 unreadable"):
        source = UCF101Source(root=str(root), on_error="skip", **small(num_frames=8, frame_stride=8))
    assert [r.video_id for r in source.records("train")].count("Basketball/v_Basketball_g03_c01") == 0
    for split in ("train", "test"):  # a whole epoch decodes: nothing truncated is left to fail in it
        loader = torch.utils.data.DataLoader(source.dataset(split), batch_size=4, num_workers=workers, timeout=60 * workers)
        assert sum(len(batch["id"]) for batch in loader) == len(source.dataset(split))
