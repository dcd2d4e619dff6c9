"""``anonpriv anonymize`` resumes only what it wrote itself, from the same input with the same request
(issue 28): an output of the same name from another input, another method or another tool is
refused before anything is written, naming both sources and the fix; ``--overwrite`` redoes it."""

from __future__ import annotations

import json
import os

from anonpriv.anonymize.cli import main
from anonpriv.anonymize.records import RECORD_SUFFIX, record_path
from anonpriv.data.video_io import probe_video, read_frames
from tests.test_anonymize_bad_input import write_video


def anonymize(*args) -> int:
    return main([str(a) for a in args] + ["--device", "cpu"])


def test_a_different_input_of_the_same_name_is_refused_not_taken_as_done(tmp_path, capsys):
    first, second, out = tmp_path / "a" / "test.avi", tmp_path / "b" / "test.mp4", tmp_path / "out"
    write_video(first, frames=12, codec="mpeg4", seed=0)
    write_video(second, frames=30, seed=1)
    assert anonymize(first, "-o", out, "--method", "raw") == 0
    written = out / "test.mp4"
    before = written.read_bytes()
    record = json.loads(record_path(written).read_text())
    assert record["source"]["path"] == str(first.resolve()) and record["frames"] == 12
    assert record["request"]["method"] == "raw"
    capsys.readouterr()

    assert anonymize(second, "-o", out, "--method", "raw") == 1
    err = capsys.readouterr().err
    assert "error:" in err and str(first.resolve()) in err and str(second) in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert written.read_bytes() == before  # nothing written

    assert anonymize(second, "-o", out, "--method", "raw", "--overwrite") == 0
    assert probe_video(written).num_frames == 30
    assert json.loads(record_path(written).read_text())["source"]["path"] == str(second.resolve())


def test_a_stronger_method_rerun_does_not_keep_the_unanonymized_output(tmp_path, capsys):
    clip, out = tmp_path / "clip.mp4", tmp_path / "out"
    write_video(clip, frames=10, height=48, width=64)
    assert anonymize(clip, "-o", out, "--method", "raw") == 0
    identity = out / "clip.mp4"
    raw_bytes = identity.read_bytes()
    capsys.readouterr()

    assert anonymize(clip, "-o", out, "--method", "blur", "--method-arg", "sigma=8") == 1
    err = capsys.readouterr().err
    assert "raw" in err and "blur (sigma=8)" in err and "--overwrite" in err and "already done" not in err
    assert identity.read_bytes() == raw_bytes

    assert anonymize(clip, "-o", out, "--method", "blur", "--method-arg", "sigma=8", "--overwrite") == 0
    assert identity.read_bytes() != raw_bytes
    capsys.readouterr()
    # the same request again is done; a changed option (or encoder setting) is not
    assert anonymize(clip, "-o", out, "--method", "blur", "--method-arg", "sigma=8") == 0
    assert "skipped 1 already done" in capsys.readouterr().err
    assert anonymize(clip, "-o", out, "--method", "blur", "--method-arg", "sigma=8", "--crf", "30") == 1
    assert "write differ" in capsys.readouterr().err


def test_moved_input_is_still_done_and_an_output_without_record_is_refused(tmp_path, capsys):
    clip, out = tmp_path / "in" / "clip.mp4", tmp_path / "out"
    write_video(clip, frames=8)
    assert anonymize(clip, "-o", out, "--method", "raw") == 0
    moved = tmp_path / "elsewhere" / "clip.mp4"
    moved.parent.mkdir()
    os.replace(clip, moved)
    capsys.readouterr()
    assert anonymize(moved, "-o", out, "--method", "raw") == 0
    assert "skipped 1 already done" in capsys.readouterr().err

    # a file someone else put there (no record): refused, never counted as done
    record_path(out / "clip.mp4").unlink()
    assert anonymize(moved, "-o", out, "--method", "raw") == 1
    err = capsys.readouterr().err
    assert RECORD_SUFFIX in err and "--overwrite" in err


def test_with_on_error_skip_a_conflict_is_listed_and_the_other_videos_are_written(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    write_video(videos / "one.mp4", frames=6, seed=0)
    write_video(videos / "two.mp4", frames=6, seed=1)
    out.mkdir()
    (out / "one.mp4").write_bytes(b"not ours")
    assert anonymize(videos, "-o", out, "--method", "raw", "--on-error", "skip") == 1
    err = capsys.readouterr().err
    assert "1 video(s) failed" in err and "one.mp4" in err
    assert (out / "one.mp4").read_bytes() == b"not ours"
    assert len(read_frames(out / "two.mp4", range(6))) == 6


def test_a_checkpoint_is_compared_by_content(tmp_path):
    from anonpriv.anonymize.records import Request, differences

    def request(digest: str, path: str) -> dict:
        return Request(None, {}, {"path": path, "hash": digest}, None, {}).as_dict()

    assert differences(request("sha256:1", "/a.ckpt"), request("sha256:1", "/b.ckpt")) == []
    assert differences(request("sha256:1", "/a.ckpt"), request("sha256:2", "/a.ckpt")) == ["checkpoint"]
