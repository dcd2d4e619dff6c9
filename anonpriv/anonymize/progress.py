"""What ``anonpriv anonymize`` shows while it works: one progress bar for the whole run, and notes
printed above it (:func:`note`) without breaking it."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class FolderProgress:
    """One progress bar for a whole run (a folder or a single file): videos done of the total,
    frames done of the total, frames/s and the time left, e.g.
    ``2/5 videos (walk.mp4):  41%|████      | 1230/3000 frames [00:12<00:17, 101.3 frames/s]``.

    The bar is drawn on stderr only when stderr is a terminal (``enabled=None``): in a log file or a
    pipe it stays quiet and the command prints only its start and summary lines. ``update(n)`` counts
    frames of the current video; ``finish_video(frames)`` sets the count to what the video's header
    announced, so that a failed or miscounted video does not leave the total off.
    """

    def __init__(self, videos: int, frames: int, enabled: bool | None = None, file=None) -> None:
        self.videos, self.done, self.frames = videos, 0, 0
        self._before, self._name = 0, ""
        self._bar = tqdm(total=frames, desc=self._description(), unit=" frames", dynamic_ncols=True,
                         file=file or sys.stderr, disable=None if enabled is None else not enabled, leave=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                                    "[{elapsed}<{remaining}, {rate_fmt}]")

    def _description(self) -> str:
        return f"{self.done}/{self.videos} videos" + (f" ({self._name})" if self._name else "")

    def _describe(self) -> None:
        self._bar.set_description_str(self._description(), refresh=False)

    def start_video(self, name: str) -> None:
        self._before, self._name = self.frames, name
        self._describe()
        self._bar.refresh()

    def update(self, frames: int) -> None:
        self.frames += frames
        self._bar.update(frames)

    def finish_video(self, frames: int) -> None:
        self.done += 1
        self.frames = self._bar.n = self._before + frames
        self._name = ""
        self._describe()
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> FolderProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def note(message: str) -> None:
    """Print a line to stderr without breaking a progress bar that is being drawn."""
    tqdm.write(message, file=sys.stderr)
