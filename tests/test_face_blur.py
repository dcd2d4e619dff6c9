"""Issue 15: the face detector (optional extra `faces`), the face_blur baseline, the face_rate metric,
``anonpriv anonymize --face-audit``, the synthetic_faces variant and its calibration command.

Tests marked ``needs_faces`` run the detector and are skipped where the extra is not installed
(tests/conftest.py); ``make install`` installs it. The missing-extra tests simulate its absence and
always run.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from anonpriv.baselines.face_blur.anonymizer import expand_box, hold_boxes
from anonpriv.data.synthetic_faces import SyntheticFacesGenerator, SyntheticFacesSource, astronaut_clip
from anonpriv.faces import INSTALL_HINT, FacesExtraMissing, faces_available
from anonpriv.methods import build_method

needs_faces = pytest.mark.needs_faces
FRAMES = 8


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return astronaut_clip(num_frames=FRAMES)  # (1, 3, 8, 224, 224)


def _face_blur(**kwargs):
    return build_method("face_blur", num_actions=2, num_privacy=1, **kwargs).eval()


# -- the detector and face_blur on real footage -------------------------------------------------------------
@needs_faces
def test_detector_finds_the_astronaut_face_in_every_frame(astronaut):
    from anonpriv.faces import FaceDetector

    frames = astronaut[0].transpose(0, 1)  # (T, 3, H, W)
    boxes = FaceDetector(threshold=0.5).detect(frames)
    assert all(len(b) >= 1 for b in boxes)
    for t, found in enumerate(boxes):  # the best box lies on the photo's face: 56 px down, moving right
        x1, y1, x2, y2, score = found[0]
        left = round(t * (224 - 112) / (FRAMES - 1))
        assert score >= 0.5
        assert left + 25 < (x1 + x2) / 2 < left + 75 and 70 < (y1 + y2) / 2 < 120, (t, found[0])
        assert 25 < x2 - x1 < 80 and 30 < y2 - y1 < 90


@needs_faces
def test_face_blur_hides_the_face_from_the_detector_and_leaves_the_rest(astronaut):
    from anonpriv.metrics.face_rate import face_rate

    method = _face_blur()
    with torch.no_grad():
        out = method.anonymize(astronaut)
    assert out.shape == astronaut.shape
    assert face_rate(astronaut) == 1.0
    assert face_rate(out) == 0.0
    changed = (out != astronaut).any(dim=1)  # (1, T, H, W)
    assert 0.02 < changed.float().mean() < 0.25  # the face box, not the frame
    assert not changed[0, 0, :, 120:].any()  # first frame: the face is at the left, the right is untouched
    assert method.anonymizer.boxes(astronaut)[0][0], "a box in the first frame"
    assert len(method.anonymizer._cache) == FRAMES  # each frame detected once, then remembered
    with torch.no_grad():
        assert torch.equal(method.anonymize(astronaut), out)


@needs_faces
def test_face_blur_black_mode_zeroes_the_boxes(astronaut):
    method = _face_blur(mode="black", margin=0.0)
    with torch.no_grad():
        out = method.anonymize(astronaut)
    (x1, y1, x2, y2), = method.anonymizer.boxes(astronaut)[0][0]
    assert torch.equal(out[0, :, 0, y1:y2, x1:x2], torch.zeros(3, y2 - y1, x2 - x1))
    assert torch.equal(out[0, :, 0, :, x2:], astronaut[0, :, 0, :, x2:])


def test_missed_frames_keep_the_nearest_box_and_boxes_grow_by_the_margin():
    box = np.array([[10, 10, 30, 40, 0.9]], np.float32)
    moved = np.array([[14, 10, 34, 40, 0.8]], np.float32)
    far = np.array([[100, 100, 120, 130, 0.7]], np.float32)
    none = np.zeros((0, 5), np.float32)
    held = hold_boxes([box, none, none, moved, none, none, none, none, none], hold_frames=2)
    assert [len(frame) for frame in held] == [1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert np.array_equal(held[1][0], box[0])  # frame 1: frame 0's box (nearer than frame 3's)
    assert np.array_equal(held[2][0], moved[0])
    assert np.array_equal(held[5][0], moved[0])
    assert np.array_equal(hold_boxes([box, none, moved], hold_frames=1)[1][0], box[0])  # a tie: the earlier
    both = hold_boxes([box, far], hold_frames=1)
    assert len(both[0]) == 2 and len(both[1]) == 2  # another face (no overlap) is held too
    overlapping = hold_boxes([box, moved], hold_frames=1)
    assert [len(frame) for frame in overlapping] == [1, 1]  # a detection at t is not doubled
    # A face moving faster than its width: frame 2's box is not held at frame 0, as frame 1 saw it nearer.
    step = [np.array([[10 + 15 * t, 10, 30 + 15 * t, 40, 0.9]], np.float32) for t in range(3)]
    assert [len(frame) for frame in hold_boxes(step, hold_frames=2)] == [1, 1, 1]
    assert hold_boxes([box, none], hold_frames=0)[1] == []
    assert expand_box(box[0], 0.25, 64, 64) == (5, 2, 35, 48)
    assert expand_box(box[0], 1.0, 45, 64) == (0, 0, 50, 45)  # clipped to the frame


# -- the face_rate metric --------------------------------------------------------------------------------
@needs_faces
def test_face_rate_per_frame_per_clip_and_per_video(astronaut):
    from anonpriv.metrics.face_rate import (
        FaceRateMeter,
        face_flags,
        face_rate,
        face_rate_per_clip,
        frame_face_scores,
    )

    grey = torch.full_like(astronaut, 0.45)
    half = astronaut.clone()
    half[:, :, FRAMES // 2:] = 0.45  # the face leaves after half the frames
    batch = torch.cat([astronaut, grey, half])  # (3, 3, T, H, W)
    scores = frame_face_scores(batch)
    assert scores.shape == (3, FRAMES) and scores.dtype == torch.float32
    flags = face_flags(batch)
    expected = torch.zeros(3, FRAMES, dtype=torch.bool)
    expected[0] = True
    expected[2, :FRAMES // 2] = True
    assert torch.equal(flags, expected)
    assert torch.equal(flags, scores >= 0.5)
    assert face_rate_per_clip(batch).tolist() == [1.0, 0.0, 0.5]
    assert face_rate(batch) == pytest.approx(1.5 / 3)
    assert face_rate(astronaut[0]) == 1.0  # one clip (C, T, H, W)

    meter = FaceRateMeter()
    meter.update(batch[:2], ids=["a", "b"])
    meter.update(batch[2:], ids=["b"])  # two clips of video b
    result = meter.compute()
    assert result.per_video == {"a": (FRAMES, FRAMES), "b": (FRAMES // 2, 2 * FRAMES)}
    assert result.frames == 3 * FRAMES and result.frames_with_face == FRAMES + FRAMES // 2
    assert result.frame_rate == pytest.approx(0.5)
    assert result.videos == 2 and result.videos_with_face == 2 and result.video_rate == 1.0
    assert result.mean_video_rate == pytest.approx((1.0 + 0.25) / 2)
    assert result.as_dict()["per_video"]["b"] == [FRAMES // 2, 2 * FRAMES]
    meter.reset()
    meter.update(grey)
    assert meter.compute().video_rate == 0.0


# -- the optional extra ------------------------------------------------------------------------------------
@pytest.fixture
def without_extra(monkeypatch):
    """onnxruntime made unimportable, as if the extra were not installed."""
    from anonpriv import faces

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    faces.default_detector.cache_clear()
    yield
    faces.default_detector.cache_clear()


def _one_line_naming_the_extra(message: str) -> None:
    assert "\n" not in message.strip()
    assert INSTALL_HINT in message and "onnxruntime" in message


def test_missing_extra_is_one_line_naming_it(without_extra):
    from anonpriv.faces import FaceDetector
    from anonpriv.metrics.face_rate import face_rate

    assert not faces_available()
    for make in (FaceDetector, lambda: _face_blur(), lambda: face_rate(torch.zeros(1, 3, 2, 32, 32))):
        with pytest.raises(FacesExtraMissing) as info:
            make()
        _one_line_naming_the_extra(str(info.value))
    assert issubclass(FacesExtraMissing, ImportError) and issubclass(FacesExtraMissing, ValueError)


def test_missing_extra_anonymize_commands_print_one_line(without_extra, tmp_path, capsys):
    from anonpriv.anonymize import main

    video = tmp_path / "in.mp4"
    _write(video, np.zeros((2, 32, 32, 3), np.uint8))
    assert main([str(video), "-o", str(tmp_path / "out"), "--method", "face_blur"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("anonpriv anonymize: error: --method face_blur: face detection needs")
    _one_line_naming_the_extra(error[-1])
    assert main([str(video), "-o", str(tmp_path / "out"), "--method", "raw", "--face-audit"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("anonpriv anonymize: error: --face-audit: ")
    _one_line_naming_the_extra(error[-1])
    assert not (tmp_path / "out").exists()  # refused before anything was written


# -- anonpriv anonymize --face-audit -----------------------------------------------------------------------
def _write(path: Path, frames: np.ndarray) -> None:
    from anonpriv.data.video_io import VideoWriter

    with VideoWriter(path, frames.shape[2], frames.shape[1], Fraction(25)) as writer:
        writer.write(frames)


@needs_faces
def test_anonymize_face_blur_with_face_audit(astronaut, tmp_path, capsys):
    from anonpriv.anonymize import main

    folder = tmp_path / "in"
    folder.mkdir()
    frames = (astronaut[0].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    _write(folder / "astronaut.mp4", frames)
    _write(folder / "empty.mp4", np.full((4, 224, 224, 3), 90, np.uint8))
    out = tmp_path / "out"
    assert main([str(folder), "-o", str(out), "--method", "face_blur", "--face-audit"]) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert "face audit" in summary
    assert f"frames with a face before {FRAMES}/{FRAMES + 4}" in summary and f"after 0/{FRAMES + 4}" in summary
    assert "videos with a face before 1/2 (50.0%), after 0/2" in summary
    audit = json.loads((out / "astronaut.faces.json").read_text())
    assert audit["before"] == {"frames": FRAMES, "frames_with_face": FRAMES, "rate": 1.0}
    assert audit["after"]["frames_with_face"] == 0 and audit["after"]["frames_with_face_at"] == []
    assert json.loads((out / "empty.faces.json").read_text())["before"]["frames_with_face"] == 0

    # raw keeps the face: the audit says so, names the video, and warns that the method is weak here
    assert main([str(folder), "-o", str(tmp_path / "raw"), "--method", "raw", "--face-audit"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert f"after {FRAMES}/{FRAMES + 4}" in lines[-3]
    assert lines[-2].strip().startswith(f"face still found in {FRAMES}/{FRAMES} (100.0%) frames of")
    assert lines[-1].startswith("anonpriv anonymize: warning: after RawBaseline the face detector still finds a face "
                                f"in {FRAMES} frame(s), 100.0% of the {FRAMES}")
    audit = json.loads((tmp_path / "raw" / "astronaut.faces.json").read_text())
    assert audit["after"]["frames_with_face_at"] == list(range(FRAMES))


# -- the synthetic variant and its calibration -------------------------------------------------------------
def test_synthetic_faces_source_has_large_heads_and_refuses_small_frames():
    source = SyntheticFacesSource(num_frames=4, num_train=2, num_val=1, num_test=2, seed=3)
    assert source.clip_shape == (4, 112, 112)
    item = source.dataset("test")[0]
    assert item["video"].shape == (3, 4, 112, 112)
    generator = source.generator
    assert isinstance(generator, SyntheticFacesGenerator) and generator.preset.name == "faces"
    geometry = generator.preset.geometry
    assert 2 * geometry.head_r * geometry.height * 112 > 30  # one figure's head: more than 30 px across
    assert 2 * geometry.head_r * geometry.pair_height * 112 > 20  # each of two figures' heads
    with pytest.raises(ValueError, match="at least 112x112"):
        SyntheticFacesSource(height=64, width=64)


@needs_faces
def test_calibration_command_prints_firing_rates_for_face_and_no_face(capsys):
    from anonpriv.data import synthetic_faces

    assert synthetic_faces.main(["--clips", "10", "--frames", "4", "--thresholds", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "Face-detector calibration on raw synthetic_faces clips (112 x 112, 4 frames, first 10 test clips" in printed
    rows = {line.split("|")[1].strip(): line.split("|") for line in printed.splitlines() if line.startswith("| face=")}
    assert {"face=1", "face=0", "face=1, one figure", "face=1, two figures"} <= set(rows)
    face, no_face = float(rows["face=1"][4].strip(" %")), float(rows["face=0"][4].strip(" %"))
    assert int(rows["face=1"][3]) > 0 and int(rows["face=0"][3]) > 0
    assert face >= 75 and no_face <= 25, printed


# -- the real-footage benchmark ----------------------------------------------------------------------------
@needs_faces
def test_face_rate_check_reports_every_method(tmp_path, capsys):
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # `benchmarks` is a folder of scripts, not an installed package
        sys.path.insert(0, root)
    from anonpriv.methods.catalog import CATALOG
    from benchmarks import face_rate_check

    output = tmp_path / "face_rate_check.md"
    assert face_rate_check.main(["--quick", "--output", str(output)]) == 0
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in output.read_text().splitlines() if line.startswith("| ") and not line.startswith("| method")}
    assert set(CATALOG) <= set(rows)
    assert rows["raw"][1:5] == ["100%", "100%", "100%", "100%"]  # before and after, at 0.5 and 0.2
    assert rows["face_blur"][1:5] == ["100%", "100%", "0%", "0%"]
    assert "Real-footage check" in capsys.readouterr().out
