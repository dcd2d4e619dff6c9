"""``anonpriv anonymize``: frame count, fps and size kept; masked regions differ; folders resume."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from anonpriv.anonymize.cli import main
from anonpriv.anonymize.engine import SlidingClipAnonymizer
from anonpriv.data.video_io import probe_video, read_frames
from anonpriv.methods.base import AnonymizationMethod

FRAMES, HEIGHT, WIDTH, FPS = 37, 38, 50, 30  # odd sizes on purpose


class LeftHalfMasking(AnonymizationMethod):
    """Test-only method: keeps the right half of every frame (a ``mask``), reports a tubelet grid."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("clip_shape", [8, 16, 16])
        super().__init__(anonymizer=nn.Identity(), **kwargs)

    def anonymizer_outputs(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, _, frames, height, width = video.shape
        mask = torch.ones(batch, 1, frames, height, width, device=video.device)
        mask[..., : width // 2] = 0
        tubelets = torch.ones(batch, frames // 2, height // 8, width // 8, dtype=torch.bool)
        tubelets[..., : tubelets.shape[-1] // 2] = False
        return {"video": video * mask, "mask": mask, "tubelet_mask": tubelets}


def write_test_video(path: Path, frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH,
                     with_audio: bool = False) -> np.ndarray:
    """A smooth moving gradient (compresses well, so codec error stays small); returns the frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    video = np.stack([np.stack([(xx * 4 + 3 * i) % 256, (yy * 5) % 256, np.full_like(xx, 40 + 4 * i)], -1)
                      for i in range(frames)]).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        stream.options = {"crf": "0"}
        if with_audio:
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for image in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
        if with_audio:
            samples = np.sin(np.linspace(0, 200, int(16000 * frames / FPS))).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return video


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "walk.mp4"
    return path, write_test_video(path)


def test_raw_keeps_frame_count_fps_size_and_content(video_file, tmp_path):
    source, frames = video_file
    from anonpriv.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:  # through the `anonpriv` entry point
        cli_main(["anonymize", str(source), "--output", str(tmp_path), "--method", "raw", "--device", "cpu"])
    assert exit_info.value.code == 0
    info = probe_video(tmp_path / "walk.mp4")
    assert (info.num_frames, info.fps, info.width, info.height) == (FRAMES, FPS, WIDTH, HEIGHT)
    written = read_frames(tmp_path / "walk.mp4", range(FRAMES))
    decoded = read_frames(source, range(FRAMES))
    assert written.shape == frames.shape
    assert np.abs(written.astype(int) - decoded).mean() < 4  # only the codec's loss (crf 18)


def test_mask_blacks_out_pruned_regions_and_writes_the_audit_file(video_file, tmp_path):
    source, frames = video_file
    assert main([str(source), "-o", str(tmp_path), "--method", f"{__name__}.LeftHalfMasking", "--save-masks",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    written = read_frames(tmp_path / "walk.mp4", range(FRAMES)).astype(int)
    decoded = read_frames(source, range(FRAMES)).astype(int)
    assert written.shape == frames.shape
    left, right = written[:, :, : WIDTH // 2 - 1], written[:, :, WIDTH // 2 + 1:]
    assert left.mean() < 3 and decoded[:, :, : WIDTH // 2 - 1].mean() > 40  # pruned: black
    assert np.abs(right - decoded[:, :, WIDTH // 2 + 1:]).mean() < 4  # kept: full-resolution original
    audit = np.load(tmp_path / "walk.masks.npz")
    windows = -(-FRAMES // 8)
    assert audit["tubelet_mask"].shape == (windows, 4, 2, 2) and audit["tubelet_mask"].dtype == bool
    assert audit["output_range"][0].tolist() == [0, 8] and audit["output_range"][-1][1] == FRAMES
    assert int(audit["num_frames"]) == FRAMES and int(audit["clip_frames"]) == 8


def test_method_returning_fewer_frames_still_gives_one_output_per_frame(video_file, tmp_path):
    source, _ = video_file
    assert main([str(source), "-o", str(tmp_path / "bdq.mkv"), "--method", "bdq", "--clip-shape", "4", "16", "16",
                 "--device", "cpu"]) == 0
    info = probe_video(tmp_path / "bdq.mkv")
    assert (info.num_frames, info.width, info.height) == (FRAMES, WIDTH, HEIGHT)


def test_sliding_windows_cover_every_frame_once():
    method = LeftHalfMasking()

    class Difference(nn.Module):
        def forward(self, video):
            return video[:, :, 1:] - video[:, :, :-1]

    method.anonymizer = Difference()
    method.anonymizer_outputs = lambda video: {"video": method.anonymizer(video)}
    anonymizer = SlidingClipAnonymizer(method, clip_frames=4)
    assert anonymizer.layout.lag == 1
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(10)]
    windows = list(anonymizer.windows(frames))
    outputs = [int(w[-(4 - 1) + k][0, 0, 0]) for w, valid in windows for k in range(valid)]
    assert outputs == list(range(10))  # frame i is the output position of exactly one window
    assert [int(f[0, 0, 0]) for f in windows[0][0]] == [0, 0, 1, 2]  # first frame padded with itself


def test_a_soft_mask_is_upsampled_nearest_and_scales_the_original_frames():
    method = LeftHalfMasking()  # clips of 8 x 16 x 16

    def outputs(video):
        mask = torch.ones_like(video[:, :1])
        mask[..., :8] = 0.5  # not binary: the weights path
        return {"video": video * mask, "mask": mask}

    method.anonymizer_outputs = outputs
    anonymizer = SlidingClipAnonymizer(method)
    frames = np.full((1, 8, 32, 32, 3), 200, np.uint8)
    result, _ = anonymizer.run_batch(frames)
    assert (result[..., :16, :] == 100).all() and (result[..., 16:, :] == 200).all()  # no blend at the edge


def test_folder_run_resumes_without_redoing_finished_files(tmp_path):
    videos = tmp_path / "videos"
    write_test_video(videos / "a.mp4", frames=10)
    write_test_video(videos / "sub" / "b.avi", frames=12)
    out = tmp_path / "out"
    args = [str(videos), "-o", str(out), "--method", "raw", "--device", "cpu"]
    assert main(args) == 0
    outputs = [out / "a.mp4", out / "sub" / "b.mp4"]
    mtimes = [p.stat().st_mtime_ns for p in outputs]
    (out / ".a.incomplete.mp4").write_bytes(b"half")  # a crashed run's leftover never counts as done
    assert main(args) == 0
    assert [p.stat().st_mtime_ns for p in outputs] == mtimes
    outputs[1].unlink()
    assert main(args) == 0
    assert outputs[1].is_file() and outputs[0].stat().st_mtime_ns == mtimes[0]
    assert probe_video(outputs[1]).num_frames == 12


def test_unreadable_video_in_a_folder_is_reported(tmp_path, capsys):
    videos = tmp_path / "videos"
    write_test_video(videos / "good.mp4", frames=8)
    (videos / "broken.mp4").write_bytes(os.urandom(4000))
    out = tmp_path / "out"
    assert main([str(videos), "-o", str(out), "--method", "raw", "--device", "cpu"]) == 1
    assert "broken.mp4" in capsys.readouterr().err
    assert main([str(videos), "-o", str(out), "--method", "raw", "--device", "cpu", "--on-error", "skip"]) == 1
    err = capsys.readouterr().err
    assert "1 video(s) failed" in err and "broken.mp4" in err
    assert (out / "good.mp4").is_file() and not (out / "broken.mp4").exists()


def test_audio_is_copied_when_asked(tmp_path):
    source = tmp_path / "talk.mp4"
    write_test_video(source, frames=12, with_audio=True)
    assert main([str(source), "-o", str(tmp_path / "out"), "--method", "raw", "--device", "cpu", "--copy-audio"]) == 0
    with av.open(str(tmp_path / "out" / "talk.mp4")) as container:
        assert len(container.streams.audio) == 1
    assert main([str(source), "-o", str(tmp_path / "silent"), "--method", "raw", "--device", "cpu"]) == 0
    with av.open(str(tmp_path / "silent" / "talk.mp4")) as container:
        assert len(container.streams.audio) == 0


def test_bad_requests_name_the_fix(video_file, tmp_path, capsys):
    source, _ = video_file
    assert main([str(source), "-o", str(tmp_path), "--method", "raw", "--save-masks", "--device", "cpu"]) == 1
    assert "returns no tubelet_mask" in capsys.readouterr().err
    assert main([str(tmp_path / "nothing.mp4"), "-o", str(tmp_path), "--method", "raw", "--device", "cpu"]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(source), "-o", str(tmp_path)])  # neither --method nor --checkpoint
