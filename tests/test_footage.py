"""``anonpriv anonymize`` on camera-sized footage (issue 28): memory bounded by a few clips whatever the
resolution and the length, faces of any size hidden by face_blur, and the footage strengths of blur
and downsample. The 1080p clips are made here with PyAV (:mod:`anonpriv.data.hd_footage`); speed is
the benchmark's (``benchmarks/footage.py``), not a test's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anonpriv.data.hd_footage import face_scene_frames, write_face_scene
from anonpriv.data.video_io import iter_frames
from anonpriv.faces import faces_available
from benchmarks.footage import FLOOR
from benchmarks.startup_and_deface import run_process

WIDTH, HEIGHT = 1920, 1080
CLIP_MIB = 16 * WIDTH * HEIGHT * 3 / 2**20  # a clip of 16 frames: 95 MiB
needs_faces = pytest.mark.skipif(not faces_available(), reason="needs the optional extra `faces`")


#: the memory tests encode with x264's ultrafast preset (no lookahead), in the floor and in the command
#: alike: the encoder's own buffers (with preset medium they grow up to its 40-frame lookahead) then
#: hide nothing that the command adds
PRESET = "ultrafast"


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> dict[int, Path]:
    """1080p clips of real faces, 48 frames (three windows: decoding, the model and encoding all reach
    their steady state) and 128."""
    folder = tmp_path_factory.mktemp("footage")
    return {frames: write_face_scene(folder / f"hd{frames}.mp4", frames, WIDTH, HEIGHT) for frames in (48, 128)}


@pytest.fixture(scope="module")
def baseline_peaks(tmp_path_factory, footage) -> dict[str, float]:
    """Peak MiB of `import torch`, of `import av`, and of the PyAV floor (decode + encode) on 48 frames."""
    folder = tmp_path_factory.mktemp("baseline")
    python = sys.executable
    peak = {}
    for name, command in {"torch": [python, "-c", "import torch"], "av": [python, "-c", "import av, numpy"],
                          "floor": [python, "-c", FLOOR, str(footage[48]), str(folder / "floor.mp4"), PRESET]}.items():
        result = run_process(command, folder, folder / f"{name}.log")
        assert result["status"] == 0, (folder / f"{name}.log").read_text()[-2000:]
        peak[name] = result["peak_mib"]
    return peak


def anonymize_peak(source: Path, output: Path, *method: str) -> float:
    """Peak MiB of one `anonpriv anonymize` process."""
    command = [sys.executable, "-m", "anonpriv", "anonymize", str(source), "-o", str(output), *method, "--overwrite",
               "--codec-option", f"preset={PRESET}"]
    log = output.with_suffix(".log")
    result = run_process(command, output.parent, log)
    assert result["status"] == 0, log.read_text()[-2000:]
    return result["peak_mib"]


METHODS = {
    "raw": ["--method", "raw"],
    "blur": ["--method", "blur"],
    "face_blur": ["--method", "face_blur"],
    "token_pruning": ["--method", "token_pruning", "--method-arg", "num_actions=4", "--method-arg", "num_privacy=5",
                      "--clip-shape", "16", "64", "64"],
}
#: MiB a method may add beyond import torch + the floor: a few clips of frames (4), plus the face
#: detector's working memory for face_blur (one 960 x 540 frame through CenterFace: about 350 MiB) and
#: the token-pruning model's own (its weights, buffers and activations: 100 MiB; on loaded cores the
#: queues run fuller, and it peaked at 1193 MiB against 1140 without this)
#: blur (a float method frame by frame) also holds its float work area: a chunk of at most
#: FLOAT_CHUNK_BYTES (64 MiB) and its rounding copy (it peaked 11 MiB over 4 clips on idle cores)
ALLOWANCE = {"raw": 4 * CLIP_MIB, "blur": 4 * CLIP_MIB + 2 * 64, "token_pruning": 4 * CLIP_MIB + 100,
             "face_blur": 4 * CLIP_MIB + 400}


@pytest.mark.parametrize("method", METHODS)
def test_peak_memory_at_1080p_is_torch_plus_the_floor_plus_a_few_clips(method, footage, baseline_peaks, tmp_path):
    if method == "face_blur" and not faces_available():
        pytest.skip("needs the optional extra `faces`")
    peak = anonymize_peak(footage[48], tmp_path / "out.mp4", *METHODS[method])
    bound = baseline_peaks["torch"] + baseline_peaks["floor"] - baseline_peaks["av"] + ALLOWANCE[method]
    assert peak <= bound, f"{method}: peak {peak:.0f} MiB > {bound:.0f} MiB ({baseline_peaks})"


def test_peak_memory_is_flat_in_video_length(footage, tmp_path):
    short = anonymize_peak(footage[48], tmp_path / "short.mp4", "--method", "raw")
    long = anonymize_peak(footage[128], tmp_path / "long.mp4", "--method", "raw")
    # 80 more frames are 5 clips: memory that followed the length would add up to 475 MiB. Queue
    # fill at the moment of the peak moves the peak by up to ~80 MiB from run to run.
    assert long - short <= 1.5 * CLIP_MIB, f"48 frames: {short:.0f} MiB, 128 frames: {long:.0f} MiB"


def test_peak_memory_is_flat_in_video_length_on_small_frames(tmp_path):
    from benchmarks.startup_and_deface import write_face_clip

    write_face_clip(tmp_path / "short.mp4", 64)
    write_face_clip(tmp_path / "long.mp4", 640)
    short = anonymize_peak(tmp_path / "short.mp4", tmp_path / "short_out.mp4", "--method", "raw")
    long = anonymize_peak(tmp_path / "long.mp4", tmp_path / "long_out.mp4", "--method", "raw")
    assert long - short <= 40, f"64 frames: {short:.0f} MiB, 640 frames: {long:.0f} MiB"  # 10x the frames


def face_scores(path: Path, every: int = 8) -> np.ndarray:
    """CenterFace's highest score in every ``every``-th frame, at the native size."""
    from anonpriv.faces import FaceDetector

    detector = FaceDetector(threshold=0.2)
    return np.array([detector.max_scores(frame[None])[0] for i, frame in enumerate(iter_frames(path)) if i % every == 0])


@needs_faces
def test_face_blur_hides_large_faces_on_1080p(footage, tmp_path):
    from anonpriv.anonymize.cli import main

    output = tmp_path / "hidden.mp4"
    assert main([str(footage[48]), "-o", str(output), "--method", "face_blur", "--device", "cpu"]) == 0
    before, after = face_scores(footage[48]), face_scores(output)
    assert (before >= 0.5).all()  # faces from 5% to 55% of the frame height, found in every frame
    assert len(after) == len(before) and (after < 0.5).all()  # at most 1% of them: here none
    # At deface's 0.2 CenterFace still fires now and then (up to 0.36) on the spacesuit's collar ring
    # beside the blurred box: benchmarks/footage.md reports that threshold.


@needs_faces
def test_face_blur_uint8_path_equals_the_clip_path_at_the_native_size():
    from anonpriv.methods.registry import build_anonymizer

    frames = torch.from_numpy(np.stack(list(face_scene_frames(4, 400, 224))))
    method = build_anonymizer("face_blur", detect_size=None, margin=0.4)
    clip = frames.permute(3, 0, 1, 2)[None].float() / 255
    expected = (method.anonymize(clip)[0].permute(1, 2, 3, 0) * 255).round()
    assert torch.equal(method.anonymize_uint8(frames).float(), expected)
    changed = (method.anonymize_uint8(frames) != frames).any(-1)
    assert 0.05 < changed.float().mean() < 0.6  # the faces, not the frame


@needs_faces
def test_detection_at_reduced_size_finds_the_faces_at_their_place():
    from anonpriv.methods.registry import build_anonymizer

    frames = torch.from_numpy(np.stack(list(face_scene_frames(2, WIDTH, HEIGHT))))
    face_blur = build_anonymizer("face_blur").anonymizer
    assert face_blur.detection_size(HEIGHT, WIDTH) == (540, 960)
    reduced = face_blur.detect(frames)
    face_blur.detect_size = None
    native = face_blur.detect(frames)
    assert [len(b) for b in reduced] == [len(b) for b in native] == [4, 4]
    for small, full in zip(reduced, native):  # boxes scaled back to the frame: the same faces
        order_small, order_full = np.argsort(small[:, 0]), np.argsort(full[:, 0])
        assert np.abs(small[order_small, :4] - full[order_full, :4]).max() < 0.1 * HEIGHT


def test_footage_strengths_apply_when_no_strength_is_given():
    from anonpriv.anonymize.footage import FOOTAGE_DEFAULTS, footage_options, weak_setting
    from anonpriv.methods.registry import build_anonymizer

    assert footage_options("blur", {}) == ({"relative_sigma": 0.03}, {"relative_sigma": 0.03})
    assert footage_options("blur", {"sigma": 8}) == ({"sigma": 8}, {})
    assert footage_options("downsample", {"factor": 4}) == ({"factor": 4}, {})
    assert footage_options("face_blur", {"threshold": 0.3})[0] == {"margin": 0.4, "threshold": 0.3}
    assert footage_options("raw", {}) == ({}, {})

    def built(method: str, **options):  # the anonymizer as `anonpriv anonymize` builds it
        return build_anonymizer(method, **options).anonymizer

    for method, options in FOOTAGE_DEFAULTS.items():
        if method != "face_blur" or faces_available():
            assert weak_setting(method, built(method, **options), HEIGHT) is None
    assert "weak" in weak_setting("blur", built("blur", sigma=1.4, kernel_size=9), HEIGHT)
    assert "weak" in weak_setting("blur", built("blur"), HEIGHT)  # the class default: 13 taps, sigma 10
    assert "weak" in weak_setting("downsample", built("downsample"), HEIGHT)  # factor 2 leaves 540 px
    assert weak_setting("downsample", built("downsample"), 112) is None  # the synthetic clips: 56 px


@needs_faces
@pytest.mark.parametrize("method", ["blur", "downsample"])
def test_footage_strengths_hide_faces_from_the_detector(method):
    from anonpriv.anonymize.footage import FOOTAGE_DEFAULTS
    from anonpriv.faces import FaceDetector
    from anonpriv.methods.registry import build_anonymizer

    detector = FaceDetector(threshold=0.5)
    for width, height in ((WIDTH, HEIGHT), (320, 240)):
        frames = torch.from_numpy(np.stack(list(face_scene_frames(2, width, height))))
        assert (detector.max_scores(frames.numpy()) >= 0.5).all()
        out = build_anonymizer(method, **FOOTAGE_DEFAULTS[method]).anonymize_uint8(frames)
        assert (detector.max_scores(out.numpy()) < 0.5).all(), (method, width)


def test_anonymize_reports_the_footage_strength_and_warns_about_weak_settings(tmp_path, capsys):
    from anonpriv.anonymize.cli import main

    source = write_face_scene(tmp_path / "clip.mp4", 4, 640, 360)
    assert main([str(source), "-o", str(tmp_path / "a"), "--method", "blur", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "footage strength (relative_sigma=0.03" in err and "warning" not in err
    assert main([str(source), "-o", str(tmp_path / "b"), "--method", "blur", "--method-arg", "sigma=1.4",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "warning: blur sigma 1.4 px is weak on 360-px frames" in err
