"""`anonpriv anonymize` shows one progress bar per run (videos and frames done, frames/s, time
left) on a terminal, and nothing but its start and summary lines elsewhere."""

from __future__ import annotations

import io
import re
import sys

import pytest

from anonpriv.anonymize import FolderProgress, main


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr is when a person runs the command."""

    def isatty(self) -> bool:
        return True


def last_line(text: str) -> str:
    """The bar as it was last drawn (tqdm redraws in place with carriage returns)."""
    return re.split(r"[\r\n]", text.rstrip("\n"))[-1]


def test_the_bar_counts_videos_and_frames_with_rate_and_time_left():
    stream = Terminal()
    with FolderProgress(videos=2, frames=30, file=stream) as progress:
        progress.start_video("a.mp4")
        progress.update(10)
        progress.update(10)
        progress.finish_video(20)
        progress.start_video("b.mp4")
        progress.update(9)  # the header said 10: finish_video counts what it announced
        progress.finish_video(10)
        assert (progress.done, progress.frames) == (2, 30)
    drawn = stream.getvalue()
    assert "0/2 videos (a.mp4)" in drawn and "1/2 videos (b.mp4)" in drawn
    final = last_line(drawn)
    assert "2/2 videos" in final and "30/30 frames" in final and "100%" in final
    assert "frames/s" in final and "<" in final  # rate and [elapsed<remaining]


def test_the_bar_stays_quiet_when_not_on_a_terminal():
    stream = io.StringIO()  # a log file or a pipe
    with FolderProgress(videos=3, frames=100, file=stream) as progress:
        progress.start_video("a.mp4")
        progress.update(50)
        progress.finish_video(50)
        assert (progress.done, progress.frames) == (1, 50)  # still counts
    assert stream.getvalue() == ""


def test_the_bar_can_be_forced_on_or_off():
    on, off = io.StringIO(), Terminal()
    with FolderProgress(videos=1, frames=5, enabled=True, file=on) as progress:
        progress.start_video("a.mp4")
        progress.finish_video(5)
    with FolderProgress(videos=1, frames=5, enabled=False, file=off) as progress:
        progress.start_video("a.mp4")
        progress.finish_video(5)
    assert "1/1 videos" in last_line(on.getvalue())
    assert off.getvalue() == ""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from test_anonymize import write_test_video

    root = tmp_path_factory.mktemp("footage")
    write_test_video(root / "one.mp4", frames=12)
    write_test_video(root / "sub" / "two.mp4", frames=20)
    return root


def run_on(folder, output, stderr, monkeypatch) -> str:
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main([str(folder), "--output", str(output), "--method", "raw", "--device", "cpu"]) == 0
    return stderr.getvalue()


def test_a_folder_run_draws_one_bar_on_a_terminal(folder, tmp_path, monkeypatch):
    printed = run_on(folder, tmp_path / "out", Terminal(), monkeypatch)
    bars = [line for line in re.split(r"[\r\n]", printed) if " videos" in line and "frames [" in line]
    assert bars, printed
    assert "2/2 videos" in bars[-1] and "32/32 frames" in bars[-1]
    assert "wrote 2 video(s) (32 frames" in printed  # the summary line is still there


def test_a_folder_run_prints_no_bar_into_a_log(folder, tmp_path, monkeypatch):
    printed = run_on(folder, tmp_path / "out", io.StringIO(), monkeypatch)
    assert "\r" not in printed and "frames [" not in printed and "videos (" not in printed
    lines = printed.strip().splitlines()
    assert len(lines) == 2, printed  # the start line and the summary line
    assert lines[0].startswith("anonpriv anonymize: 2 video(s) to write") and "wrote 2 video(s)" in lines[1]
