"""Benchmark 4: decoded training clips per second from the real-video source, 0, 1 and 2 workers.

A UCF101-shaped tree (``UCF-101/<Class>/v_<Class>_gXX_c01.avi`` in MPEG-4 part 2 like the
original Xvid files, ``ucfTrainTestlist/`` split files, ``privacy_labels.csv``) of generated
320 x 240, 25 fps videos is written to a temporary folder. :class:`~anonpriv.data.UCF101Source`
serves 16 x 112 x 112 training clips (frame stride 2, random start, random resized crop, flip:
``configs/data/ucf101.yaml``'s settings) through :class:`~anonpriv.data.VideoPrivacyDataModule`'s
train loader, batch 4, with ``num_workers`` 0, 1 and 2 (persistent workers).

Reported per worker count: the first epoch (it includes starting the workers) and the median of
the following epochs, as clips/s. The source's construction (listing the split files and probing
every video with PyAV) is timed once.

    python -m benchmarks.data_loading [--quick] [--videos-per-class 8] [--frames 150] [--repeats 3] [--output FILE]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import benchmark_parser, emit, fmt, machine_line, markdown_table

CLASSES = ("ApplyEyeMakeup", "Basketball", "Biking", "Drumming")
ATTRIBUTES = ("face", "skin_color", "gender", "nudity", "relationship")
TEST_GROUPS = 2  # groups 1..TEST_GROUPS form the test list, the rest the train list (like split 1)


def write_avi(path: Path, frames: int, width: int, height: int, seed: int, fps: int = 25) -> None:
    """A textured background panning under a moving block, MPEG-4 part 2 in AVI."""
    import av

    rng = np.random.default_rng(seed)
    texture = (rng.random((height // 8 + 1, width // 8 + 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 1_000_000
        for i in range(frames):
            shift = i % 64
            image = np.ascontiguousarray(texture[:height, shift // 8: shift // 8 + width])
            top, left = (2 * i) % (height - 40), (3 * i) % (width - 40)
            image[top:top + 40, left:left + 40] = (240, 200, 30)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def write_ucf101_tree(root: Path, videos_per_class: int, frames: int, width: int = 320, height: int = 240) -> int:
    """A UCF101-shaped tree under ``root`` (split 1 only); returns the number of training videos."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(CLASSES)))
    train, test, labels = [], [], ["video," + ",".join(ATTRIBUTES)]
    for action, name in enumerate(CLASSES):
        for group in range(1, videos_per_class + 1):
            relative = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_avi(root / "UCF-101" / relative, frames, width, height, seed=100 * action + group)
            (test if group <= TEST_GROUPS else train).append((relative, action))
            labels.append(f"{relative}," + ",".join(str((action + group + bit) % 2) for bit in range(len(ATTRIBUTES))))
    (lists / "trainlist01.txt").write_text("".join(f"{path} {action + 1}\n" for path, action in train))
    (lists / "testlist01.txt").write_text("".join(f"{path}\n" for path, _ in test))
    (root / "privacy_labels.csv").write_text("\n".join(labels) + "\n")
    return len(train)


def epoch_seconds(loader) -> tuple[float, int]:
    """Time one pass over ``loader``; returns (seconds, clips)."""
    clips = 0
    start = time.perf_counter()
    for batch in loader:
        clips += len(batch["video"])
    return time.perf_counter() - start, clips


def run(quick: bool = False, videos_per_class: int = 8, frames: int = 150, epochs: int = 4,
        workers: tuple[int, ...] = (0, 1, 2), batch_size: int = 4) -> str:
    from anonpriv.data import UCF101Source, VideoPrivacyDataModule

    if quick:
        # two training groups: the source holds one out as the validation split
        videos_per_class, frames, epochs, workers = TEST_GROUPS + 2, 40, 2, (0, 1)
    clip = dict(num_frames=8, height=56, width=56) if quick else dict(num_frames=16, height=112, width=112)
    rows = []
    with tempfile.TemporaryDirectory(prefix="anonpriv-ucf-") as folder:
        root = Path(folder)
        write_ucf101_tree(root, videos_per_class, frames, *((160, 120) if quick else (320, 240)))
        start = time.perf_counter()
        source = UCF101Source(str(root), split=1, frame_stride=2, **clip)
        probe_seconds = time.perf_counter() - start
        train_videos = len(source.records("train"))
        all_videos = train_videos + len(source.records("val")) + len(source.records("test"))
        for num_workers in workers:
            datamodule = VideoPrivacyDataModule(source, batch_size=batch_size, num_workers=num_workers)
            datamodule.setup("fit")
            loader = datamodule.train_dataloader()
            first, clips = epoch_seconds(loader)
            later = [epoch_seconds(loader)[0] for _ in range(epochs - 1)]
            steady = statistics.median(later) if later else first
            rows.append([num_workers, fmt(clips / first), fmt(clips / steady),
                         fmt(clips / steady * clip["num_frames"], 0)])
            del loader, datamodule  # stops the persistent workers
    shape = f"{clip['num_frames']}x{clip['height']}x{clip['width']}"
    title = (f"### Data loading: UCF101-shaped source, {train_videos} training videos of {frames} frames "
             f"({'160x120' if quick else '320x240'} MPEG-4 AVI), {shape} clips (stride 2), batch {batch_size}\n\n"
             f"Machine: {machine_line()}\n\n"
             f"Source construction (split files + PyAV probe of {all_videos} videos): {probe_seconds:.2f} s. "
             f"Steady state: median of epochs 2-{epochs}.\n\n")
    return title + markdown_table(["workers", "first epoch clips/s", "steady clips/s", "steady frames/s"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0], repeats=3)  # repeats: epochs after the first
    parser.add_argument("--videos-per-class", type=int, default=8, help=f"videos per class ({len(CLASSES)} classes; "
                        f"groups 1-{TEST_GROUPS} are the test list)")
    parser.add_argument("--frames", type=int, default=150, help="frames per generated video (UCF101 averages ~186)")
    args = parser.parse_args(argv)
    if args.devices and args.devices != ["cpu"]:
        parser.error("data loading runs on the CPU.")
    emit(run(args.quick, args.videos_per_class, args.frames, epochs=1 + args.repeats), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
