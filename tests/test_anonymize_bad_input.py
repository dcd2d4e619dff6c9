"""``anonpriv anonymize`` under bad and awkward input (issue 12): every input gets one complete
output or is reported as failed; nothing half-written ever looks finished."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from anonpriv.anonymize.cli import main
from anonpriv.data.video_io import probe_video, read_frames

FPS = 25


def frames_of(count: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    """A moving gradient (compresses well), different per seed."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(xx * 4 + 3 * i + seed * 50) % 256, (yy * 5 + seed * 30) % 256,
                               np.full_like(xx, (40 + 2 * i) % 256)], -1) for i in range(count)]).astype(np.uint8)


def write_video(path: Path, frames: int = 20, height: int = 32, width: int = 32, codec: str = "libx264",
                seed: int = 0, options: dict | None = None, container_options: dict | None = None,
                times: list[Fraction] | None = None, time_base: Fraction | None = None,
                with_audio: bool = False) -> np.ndarray:
    """Encode a test video (``times``: per-frame timestamps in seconds for variable frame rate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    video = frames_of(frames, height, width, seed)
    with av.open(str(path), "w", container_options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if options:
            stream.options = options
        if time_base is not None:
            stream.codec_context.time_base = time_base
        audio = None
        if with_audio:
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for i, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times is not None:
                frame.pts = round(times[i] / time_base)
                frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            seconds = float(times[-1] + Fraction(1, FPS)) if times is not None else frames / FPS
            samples = np.sin(np.linspace(0, 200, int(16000 * seconds))).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return video


def decoded_count(path: Path) -> int:
    """Frames decodable before the end of the file or the first decoder error."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.FFmpegError:
            pass
    return count


def run(*args) -> int:
    return main([str(a) for a in args] + ["--method", "raw", "--device", "cpu"])


# -- 1. outputs are one-to-one with inputs ------------------------------------------------------------
def test_inputs_with_the_same_stem_are_refused_or_listed_never_overwritten(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    write_video(videos / "clip.avi", frames=10, codec="mpeg4")
    write_video(videos / "clip.mp4", frames=30)
    write_video(videos / "other.mp4", frames=12)
    assert run(videos, "-o", out) == 1  # --on-error raise: refused before anything is written
    err = capsys.readouterr().err
    assert "clip.avi" in err and "clip.mp4" in err and "rename" in err
    assert not out.exists() or not any(out.iterdir())
    assert run(videos, "-o", out, "--on-error", "skip") == 1  # the others are written, the pair listed
    err = capsys.readouterr().err
    assert "2 video(s) failed" in err and "clip.avi" in err and "clip.mp4" in err
    assert sorted(p.name for p in out.iterdir()) == ["other.anonpriv.json", "other.mp4"]  # the output and its record
    assert decoded_count(out / "other.mp4") == 12
    assert run(videos, "-o", out, "--on-error", "skip") == 1  # a rerun never counts the pair as done
    assert "2 video(s) failed" in capsys.readouterr().err


def test_output_folder_above_the_input_folder_finds_the_inputs(tmp_path):
    nest = tmp_path / "nest"
    write_video(nest / "in" / "a.mp4", frames=8)
    assert run(nest / "in", "-o", nest) == 0
    assert decoded_count(nest / "a.mp4") == 8


# -- 2. an input that ends early is a failure, never a shorter "finished" output ---------------------
def write_truncated(path: Path, keep: float, frames: int = 100) -> None:
    """A video whose header states ``frames`` frames, cut to ``keep`` of its frame data (mp4: index
    first, so the cut file still opens; mkv: no frame count in the header, only a duration)."""
    options = {"movflags": "faststart"} if path.suffix == ".mp4" else None
    write_video(path, frames=frames, options={"crf": "0"}, container_options=options)
    data = path.read_bytes()
    start = data.find(b"mdat") if path.suffix == ".mp4" else 0
    path.write_bytes(data[: start + int((len(data) - start) * keep)])


def test_truncated_inputs_fail_leave_nothing_and_are_redone_on_rerun(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    write_video(videos / "good.mp4", frames=15)
    write_truncated(videos / "cut.mp4", keep=0.25)
    write_truncated(videos / "cut.mkv", keep=0.4)
    with av.open(str(videos / "cut.mp4")) as container:
        assert container.streams.video[0].frames == 100  # the header still says 100
    assert decoded_count(videos / "cut.mp4") < 40 and decoded_count(videos / "cut.mkv") < 60
    assert run(videos / "cut.mp4", "-o", out) == 1  # a single file: a one-line error, no output
    err = capsys.readouterr().err
    assert "cut.mp4" in err and "truncated" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    for attempt in range(2):  # the rerun redoes exactly the failed ones
        assert run(videos, "-o", out, "--on-error", "skip", "--suffix", ".mkv") == 1
        err = capsys.readouterr().err
        assert "2 video(s) failed" in err and "cut.mp4" in err and "cut.mkv" in err
        assert sorted(p.name for p in out.iterdir()) == ["good.anonpriv.json", "good.mkv"]  # no partial, no temporary
        assert decoded_count(out / "good.mkv") == 15
        assert f"{1 - attempt} video(s) to write" in err


def test_allow_truncated_keeps_the_partial_output_under_its_own_name(tmp_path, capsys):
    source, out = tmp_path / "cut.mp4", tmp_path / "out"
    write_truncated(source, keep=0.25)
    decodable = decoded_count(source)
    assert run(source, "-o", out, "--allow-truncated") == 0
    err = capsys.readouterr().err
    assert "end early" in err and "cut.truncated.mp4" in err
    assert sorted(p.name for p in out.iterdir()) == ["cut.truncated.mp4"]
    assert decoded_count(out / "cut.truncated.mp4") == decodable
    assert run(source, "-o", out, "--allow-truncated") == 0
    assert "1 video(s) to write" in capsys.readouterr().err  # never counted as done


# -- 3. a resolution change midway ------------------------------------------------------------------
def write_resolution_change(path: Path) -> None:
    """An MPEG program stream whose frames go from 64x48 to 80x60 (two streams back to back)."""
    first, second = path.with_name("part1.mpg.tmp"), path.with_name("part2.mpg.tmp")
    for part, (height, width), seed in ((first, (48, 64), 0), (second, (60, 80), 1)):
        write_video(part.with_suffix(".mpg"), frames=10, height=height, width=width, codec="mpeg2video", seed=seed)
        part.with_suffix(".mpg").rename(part)
    path.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()


def test_resolution_change_midway_is_rescaled_to_the_first_frames_size(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    write_resolution_change(videos / "switch.mpg")
    write_video(videos / "zgood.mp4", frames=9)
    with av.open(str(videos / "switch.mpg")) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(64, 48), (80, 60)}
    assert run(videos, "-o", out, "--on-error", "skip") == 0
    err = capsys.readouterr().err
    assert "resolution changes from 64x48 to 80x60" in err and "rescaled" in err
    written = read_frames(out / "switch.mp4", range(decoded_count(videos / "switch.mpg")))
    assert written.shape[1:] == (48, 64, 3)
    assert decoded_count(out / "switch.mp4") == decoded_count(videos / "switch.mpg")
    assert decoded_count(out / "zgood.mp4") == 9


# -- one-line errors where tracebacks were -----------------------------------------------------------
def bad_checkpoints(folder: Path) -> dict[str, Path]:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.ckpt" for name in ("random", "half", "foreign", "tensor")}
    paths["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    torch.save({"state_dict": {}, "weights": torch.zeros(3)}, paths["foreign"])
    torch.save(torch.zeros(3), paths["tensor"])
    whole = paths["foreign"].read_bytes()
    paths["half"].write_bytes(whole[: len(whole) // 2])
    return paths


@pytest.mark.parametrize("args, hint", [
    (["--checkpoint", "{ckpt}/random.ckpt"], "not a PyTorch checkpoint"),
    (["--checkpoint", "{ckpt}/half.ckpt"], "damaged or incomplete"),
    (["--checkpoint", "{ckpt}/foreign.ckpt"], "written by `anonpriv fit`"),
    (["--checkpoint", "{ckpt}/tensor.ckpt"], "written by `anonpriv fit`"),
    (["--method", "raw", "--suffix", ".webm"], "--codec libvpx-vp9"),
    (["--method", "raw", "--suffix", ".xyz"], "--suffix .mp4"),
    (["--method", "raw", "--pix-fmt", "foo"], "pick one of those"),
    (["--method", "raw", "--codec-option", "preset=bogus"], "--codec-option names and values"),
    (["--method", "raw", "--device", "cuda"], "--device cpu"),
    (["--method", "raw", "--device", "nonsense"], "not a device name"),
    (["--method", "raw", "-o", "{tmp}/a_file"], "give an output folder"),
    (["--method", "raw", "-o", "{tmp}/videos"], "choose another --output"),
])
def test_bad_requests_get_one_line_naming_the_fix_and_leave_nothing(tmp_path, capsys, args, hint):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", frames=6)
    bad_checkpoints(tmp_path / "ckpt")
    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(ckpt=tmp_path / "ckpt", tmp=tmp_path) for a in args]
    output = [] if "-o" in args else ["-o", str(tmp_path / "out")]
    assert main([str(videos)] + output + args + ([] if "--device" in args else ["--device", "cpu"])) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("anonpriv anonymize: error:")]
    assert len(lines) == 1 and hint in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in videos.iterdir()) == ["a.mp4"]  # no temporary file anywhere


def test_webm_with_copied_aac_audio_gets_opus_audio(tmp_path):
    source = tmp_path / "talk.mp4"
    write_video(source, frames=12, with_audio=True)
    assert run(source, "-o", tmp_path / "out", "--suffix", ".webm", "--codec", "libvpx-vp9", "--copy-audio") == 0
    with av.open(str(tmp_path / "out" / "talk.webm")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
        assert sum(1 for _ in container.decode(audio=0)) > 0
    assert decoded_count(tmp_path / "out" / "talk.webm") == 12


# -- variable frame rate ------------------------------------------------------------------------------
def frame_times(path: Path, kind: str = "video") -> list[float]:
    """Start time of every decoded frame (audio: end time of every frame)."""
    with av.open(str(path)) as container:
        if kind == "video":
            return [float(frame.time) for frame in container.decode(video=0)]
        return [float(frame.time) + frame.samples / frame.sample_rate for frame in container.decode(audio=0)]


def test_variable_frame_rate_keeps_every_frames_time_and_the_audio_in_sync(tmp_path):
    gaps = [Fraction(1, 30) if i % 3 else Fraction(1, 8) for i in range(45)]  # mean about 16 fps, header 25
    times = [sum(gaps[:i], Fraction(0)) for i in range(45)]
    source = tmp_path / "vfr.mkv"
    write_video(source, frames=45, times=times, time_base=Fraction(1, 1000), with_audio=True)
    assert run(source, "-o", tmp_path / "out", "--copy-audio") == 0
    output = tmp_path / "out" / "vfr.mp4"
    before, after = frame_times(source), frame_times(output)
    assert len(after) == len(before) == 45
    assert max(abs(a - b) for a, b in zip(after, before)) < 1 / 30  # each frame within one frame of its input time
    assert abs(frame_times(output, "audio")[-1] - frame_times(source, "audio")[-1]) < 1 / 30
    assert abs((after[-1] - after[0]) - (before[-1] - before[0])) < 1 / 30  # same video duration


def test_constant_rate_containers_still_get_one_frame_per_period(tmp_path):
    source = tmp_path / "clip.mp4"  # mp4 time base 1/12800: its timestamps must not become avi frames
    write_video(source, frames=20)
    assert run(source, "-o", tmp_path / "out", "--suffix", ".avi", "--codec", "mpeg4") == 0
    info = probe_video(tmp_path / "out" / "clip.avi", check_complete=True)
    assert (info.num_frames, info.fps) == (20, FPS)
    assert decoded_count(tmp_path / "out" / "clip.avi") == 20


# -- rotation -------------------------------------------------------------------------------------------
def write_rotated(source: Path) -> None:
    """Stored 48x32 landscape with a bright top-left mark, shown rotated 90 degrees clockwise."""
    source.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(-90)
        for _ in range(6):
            image = np.full((32, 48, 3), 30, np.uint8)
            image[:8, :8] = 250  # a bright mark in the stored top-left corner
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def test_rotated_phone_video_is_written_upright(tmp_path, capsys):
    source = tmp_path / "phone.mp4"
    write_rotated(source)
    assert run(source, "-o", tmp_path / "out") == 0
    assert "display rotation" in capsys.readouterr().err
    output = tmp_path / "out" / "phone.mp4"
    info = probe_video(output)
    assert (info.width, info.height, info.rotation) == (32, 48, 0)  # upright, no rotation left to apply
    frame = read_frames(output, [3])[0].astype(int)
    assert frame[:8, -8:].mean() > 200 and frame[:8, :8].mean() < 80  # clockwise: top-left went top-right


# -- all of it at once ----------------------------------------------------------------------------------
def test_mixed_folder_one_complete_output_per_good_input_every_bad_one_listed_rerun_redoes_them(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    write_video(videos / "good.mp4", frames=30, with_audio=True)
    write_truncated(videos / "cut.mp4", keep=0.25)
    (videos / "broken.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    write_video(videos / "pair" / "clip.avi", frames=10, codec="mpeg4")
    write_video(videos / "pair" / "clip.mp4", frames=14)
    gaps = [Fraction(1, 30) if i % 3 else Fraction(1, 8) for i in range(30)]
    write_video(videos / "vfr.mkv", frames=30, times=[sum(gaps[:i], Fraction(0)) for i in range(30)],
                time_base=Fraction(1, 1000), with_audio=True)
    write_rotated(videos / "phone.mp4")
    write_resolution_change(videos / "switch.mpg")
    bad = ["cut.mp4", "broken.mp4", "pair/clip.avi", "pair/clip.mp4"]
    good = {"good.mp4": "good.mp4", "vfr.mkv": "vfr.mp4", "phone.mp4": "phone.mp4", "switch.mpg": "switch.mp4"}
    args = [videos, "-o", out, "--on-error", "skip", "--copy-audio"]

    assert run(*args) == 1
    err = capsys.readouterr().err
    assert f"{len(bad)} video(s) failed" in err
    failed = err.split("video(s) failed:")[1].strip().splitlines()
    assert sorted(line.strip().split(": ")[0].replace(str(videos) + "/", "") for line in failed) == sorted(bad)
    assert all(len(line.split(": ", 1)[1]) > 20 for line in failed)  # each with its reason
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    records = [str(Path(name).with_suffix(".anonpriv.json")) for name in good.values()]
    assert written == sorted([*good.values(), *records])  # nothing else: no partial, temporary or overwritten file
    for name, output in good.items():
        source, result = videos / name, out / output
        assert decoded_count(result) == decoded_count(source), name
        before, after = frame_times(source), frame_times(result)
        if name == "switch.mpg":  # two streams back to back: its timestamps restart midway, so 1/25 s each
            before = [i / 25 for i in range(len(before))]
        assert abs((after[-1] - after[0]) - (before[-1] - before[0])) <= 1 / 25 + 1e-6, name
        with av.open(str(source)) as container:
            has_audio = bool(container.streams.audio)
        if has_audio:
            assert abs(frame_times(result, "audio")[-1] - frame_times(source, "audio")[-1]) <= 1 / 25, name

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert run(*args) == 1  # the rerun redoes exactly the failed ones
    err = capsys.readouterr().err
    assert f"{len(good)} already done" in err and f"{len(bad)} video(s) failed" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes


def test_encoder_failure_on_one_video_is_listed_and_the_folder_goes_on(tmp_path, capsys):
    from test_anonymize import write_test_video

    videos, out = tmp_path / "videos", tmp_path / "out"
    write_test_video(videos / "odd.mp4", frames=6, height=33, width=35)  # 4:2:0 cannot hold odd sizes
    write_test_video(videos / "even.mp4", frames=6, height=32, width=32)
    assert run(videos, "-o", out, "--pix-fmt", "yuv420p", "--on-error", "skip") == 1
    err = capsys.readouterr().err
    assert "1 video(s) failed" in err and "odd.mp4" in err and "encoding failed" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["even.anonpriv.json", "even.mp4"]
