"""The real-video clip dataset: index, clip sampler and transform as separate, injectable parts.

The videos here carry spatial structure (red rises left to right, blue top to bottom, green with the
frame index), so a different crop, flip or choice of frames changes a clip's pixels.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from anonpriv.data import UCF101Source, video_dataset
from anonpriv.data.clip_sampling import EvenlySpacedClipSampler, RandomClipSampler
from anonpriv.data.clip_transforms import CenterCrop, RandomCropFlip
from anonpriv.data.video_dataset import VideoClipDataset
from anonpriv.data.video_io import read_frames

FRAMES, HEIGHT, WIDTH, FPS = 20, 36, 44, 25
CLASSES = ["Archery", "Bowling"]
ATTRIBUTES = ["face", "gender"]


def write_structured_video(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.linspace(0, 240, WIDTH, dtype=np.float32)[None, :]
    y = np.linspace(0, 240, HEIGHT, dtype=np.float32)[:, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(FRAMES):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            image[..., 0] = np.broadcast_to(x, (HEIGHT, WIDTH)).astype(np.uint8)
            image[..., 1] = (12 * i + shade) % 256
            image[..., 2] = np.broadcast_to(y, (HEIGHT, WIDTH)).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def build_tree(root: Path) -> Path:
    """A UCF101-shaped tree: 2 classes x 4 groups; groups 1-2 test, 3-4 train (one of them becomes val)."""
    videos = [(f"{cls}/v_{cls}_g{group:02d}_c01.avi", action, group)
              for action, cls in enumerate(CLASSES) for group in range(1, 5)]
    for relative, action, group in videos:
        write_structured_video(root / "UCF-101" / relative, shade=20 * group + 5 * action)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (lists / "trainlist01.txt").write_text("".join(f"{r} {a + 1}\n" for r, a, g in videos if g > 2))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r, _, g in videos if g <= 2))
    rows = ["video," + ",".join(ATTRIBUTES)] + [f"{r},{g % 2},{a}" for r, a, g in videos]
    (root / "privacy_labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("structured_ucf"))


def make_source(root: Path, **overrides) -> UCF101Source:
    options = {"num_frames": 4, "height": 16, "width": 16, "frame_stride": 3, "test_clips": 2, "val_fraction": 0.5}
    return UCF101Source(root=str(root), **(options | overrides))


def fingerprint(video: torch.Tensor) -> tuple[float, float]:
    """``(mean, a fixed cosine-weighted mean)`` of a clip: any other frames, crop or flip changes the
    second number, and both are stable to float rounding, unlike a hash of the bytes."""
    c, t, h, w = (torch.arange(n, dtype=torch.float64) for n in video.shape)
    weights = torch.cos(1.3 * c[:, None, None, None] + 0.7 * t[None, :, None, None]
                        + 0.37 * h[None, None, :, None] + 0.23 * w[None, None, None, :])
    video = video.double()
    return round(float(video.mean()), 6), round(float((video * weights).mean()), 6)


def seeded_samples(source: UCF101Source) -> list[tuple]:
    """At seed 0: the training split twice (two epochs of random clips), then val and test."""
    torch.manual_seed(0)
    samples = []
    for split in ("train", "train", "val", "test"):
        dataset = source.dataset(split)
        for index in range(len(dataset)):
            item = dataset[index]
            samples.append((split, item["id"], int(item["action"]), item["privacy"].tolist(),
                            *fingerprint(item["video"])))
    return samples


#: ``seeded_samples`` of :func:`make_source` as the dataset gave them before the clip index, clip
#: sampler and clip transform were taken apart (computed with that code, commit 865d9d8): the same
#: videos, labels, frames, crops and flips, drawn from the same random stream.
EXPECTED = [
    ("train", "Archery/v_Archery_g04_c01", 0, [0.0, 0.0], 0.499231, -0.012925),
    ("train", "Bowling/v_Bowling_g04_c01", 1, [0.0, 1.0], 0.488969, -0.010514),
    ("train", "Archery/v_Archery_g04_c01", 0, [0.0, 0.0], 0.470178, -0.015813),
    ("train", "Bowling/v_Bowling_g04_c01", 1, [0.0, 1.0], 0.526446, -0.012464),
    ("val", "Archery/v_Archery_g03_c01", 0, [1.0, 0.0], 0.529997, -0.009197),
    ("val", "Bowling/v_Bowling_g03_c01", 1, [1.0, 1.0], 0.53459, -0.010398),
    ("test", "Archery/v_Archery_g01_c01", 0, [1.0, 0.0], 0.400398, -0.014197),
    ("test", "Archery/v_Archery_g01_c01", 0, [1.0, 0.0], 0.554692, -0.00852),
    ("test", "Archery/v_Archery_g02_c01", 0, [0.0, 0.0], 0.424715, -0.013276),
    ("test", "Archery/v_Archery_g02_c01", 0, [0.0, 0.0], 0.496749, -0.007891),
    ("test", "Bowling/v_Bowling_g01_c01", 1, [1.0, 1.0], 0.40581, -0.012747),
    ("test", "Bowling/v_Bowling_g01_c01", 1, [1.0, 1.0], 0.561732, -0.010713),
    ("test", "Bowling/v_Bowling_g02_c01", 1, [0.0, 1.0], 0.428929, -0.012859),
    ("test", "Bowling/v_Bowling_g02_c01", 1, [0.0, 1.0], 0.504577, -0.008592),
]


def test_default_sampler_and_transform_give_the_samples_recorded_before_they_were_injectable(tree):
    """The clips at seed 0 equal :data:`EXPECTED`, recorded with the dataset whose sampling and
    augmentation were written into ``__getitem__``: the default clip sampler and transform keep the
    clips, crops, flips and the order of random draws. Fingerprints, not a hash of the bytes, so that
    float rounding on another CPU does not fail the test while a changed frame, crop or flip does."""
    samples = seeded_samples(make_source(tree))
    assert [s[:4] for s in samples] == [e[:4] for e in EXPECTED]
    for sample, expected in zip(samples, EXPECTED):
        assert sample[4:] == pytest.approx(expected[4:], abs=5e-6), sample[:2]


def test_the_default_components_follow_the_source_options(tree):
    source = make_source(tree, val_clips=3, test_crop=0.7, train_crop_scale=(0.3, 0.9))
    train, val, test = (source.dataset(split) for split in ("train", "val", "test"))
    assert isinstance(train.clip_sampler, RandomClipSampler) and train.clip_sampler.clips_per_video == 1
    assert isinstance(train.transform, RandomCropFlip) and train.transform.scale == (0.3, 0.9)
    assert isinstance(val.clip_sampler, EvenlySpacedClipSampler) and val.clip_sampler.clips_per_video == 3
    assert isinstance(test.clip_sampler, EvenlySpacedClipSampler) and test.clip_sampler.clips_per_video == 2
    assert isinstance(test.transform, CenterCrop) and test.transform.fraction == 0.7
    assert (test.clip_sampler.num_frames, test.clip_sampler.stride) == (4, 3)
    assert sorted(source.index.records) == ["test", "train", "val"]
    assert [r.video_id for r in source.index.records["train"]] == [r.video_id for r in source.records("train")]


class EveryFifthFrame:
    """Clip ``k`` is frame ``5 k`` four times; remembers what it was asked."""

    clips_per_video = 3

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, video_frames: int, clip: int) -> np.ndarray:
        self.calls.append((video_frames, clip))
        return np.full(4, 5 * clip)


def whole_frames(frames: np.ndarray) -> torch.Tensor:
    """No crop, no resize: ``(T, H, W, 3)`` uint8 -> ``(3, T, H, W)`` in [0, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255


def test_an_injected_sampler_and_transform_are_used(tree):
    source = make_source(tree)
    sampler = EveryFifthFrame()
    test = source.dataset("test", clip_sampler=sampler, transform=whole_frames)
    videos = source.records("test")
    assert len(test) == 3 * len(videos)
    actions, _ = test.labels()
    assert actions.tolist() == np.repeat([r.action for r in videos], 3).tolist()
    item = test[4]  # the second video's clip 1
    assert item["id"] == videos[1].video_id and sampler.calls == [(FRAMES, 1)]
    assert item["video"].shape == (3, 4, HEIGHT, WIDTH)  # the transform's output, uncropped
    assert torch.equal(item["video"], whole_frames(read_frames(videos[1].path, [5, 5, 5, 5])))  # the sampler's frames
    assert not torch.equal(item["video"], test[3]["video"])  # clip 0: frame 0
    assert source.dataset("train", transform=whole_frames).transform is whole_frames
    direct = VideoClipDataset(videos, EveryFifthFrame(), whole_frames)
    assert torch.equal(direct[4]["video"], item["video"])


def test_a_subclass_can_replace_the_default_augmentation(tree):
    class NoAugmentation(UCF101Source):
        def clip_transform(self, split: str):
            return CenterCrop(self.settings.height, self.settings.width)

    source = NoAugmentation(root=str(tree), num_frames=4, height=16, width=16, test_clips=2, val_fraction=0.5)
    train = source.dataset("train")
    assert isinstance(train.transform, CenterCrop)
    torch.manual_seed(0)
    first = train[0]["video"]
    torch.manual_seed(0)
    assert torch.equal(train[0]["video"], first)  # only the start frame is random now


def test_building_the_index_decodes_no_clip(tree, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a clip was decoded while the index was built")

    monkeypatch.setattr(video_dataset, "read_frames", refuse)
    source = make_source(tree)
    assert len(source.records("train")) == 2 and len(source.records("test")) == 4
    with pytest.raises(AssertionError, match="decoded"):
        source.dataset("test")[0]
