"""``anonpriv anonymize --face-audit``: frames with a face before and after, per video.

After the videos are written, each input and its output are decoded again (upright, at their
native size) and every frame goes through the face detector (:mod:`anonpriv.faces`, the optional
extra ``pip install 'anonpriv[faces]'``). The output is audited as written, after encoding. Per video,
``<output stem>.faces.json`` beside the output records::

    {"source": ..., "output": ..., "threshold": 0.5,
     "before": {"frames": N, "frames_with_face": k, "rate": k / N},
     "after":  {"frames": M, "frames_with_face": m, "rate": m / M, "frames_with_face_at": [i, ...]}}

(``frames_with_face_at``: the output frames where a face is still found, to look at). A summary
(frames and videos with a face, before and after) ends the command's output. An output audited
before (its JSON newer than the video) is read back, not decoded again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from anonpriv.faces import DEFAULT_THRESHOLD, FaceDetector

AUDIT_SUFFIX = ".faces.json"


def audit_path(output: Path) -> Path:
    """Where the audit of ``output`` is written: ``<stem>.faces.json`` beside it."""
    return output.with_name(output.stem + AUDIT_SUFFIX)


@dataclasses.dataclass
class VideoAudit:
    source: str
    output: str
    threshold: float
    frames_before: int
    faces_before: int
    frames_after: int
    faces_after: int
    faces_after_at: list[int]

    def as_json(self) -> dict:
        def side(frames, faces):
            return {"frames": frames, "frames_with_face": faces, "rate": faces / frames if frames else None}

        return {"source": self.source, "output": self.output, "threshold": self.threshold,
                "before": side(self.frames_before, self.faces_before),
                "after": {**side(self.frames_after, self.faces_after), "frames_with_face_at": self.faces_after_at}}

    @classmethod
    def from_json(cls, data: dict) -> VideoAudit:
        before, after = data["before"], data["after"]
        return cls(data["source"], data["output"], float(data["threshold"]), int(before["frames"]),
                   int(before["frames_with_face"]), int(after["frames"]), int(after["frames_with_face"]),
                   list(after.get("frames_with_face_at", [])))


class FaceAudit:
    """Counts frames with a face in video files (see the module docstring).

    Args:
        threshold: the detector heat for a face (the face-rate metric's 0.5).
        batch_frames: frames per detector call.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, batch_frames: int = 16) -> None:
        self.detector = FaceDetector(threshold=threshold, batch_frames=batch_frames)  # checks the extra
        self.threshold = float(threshold)
        self.batch_frames = batch_frames

    def frames_with_face(self, path: Path) -> tuple[int, list[int]]:
        """``(frames, indices of the frames with a face)`` of a video file."""
        from anonpriv.data.video_io import iter_frames

        total, hits, chunk = 0, [], []

        def flush() -> None:
            nonlocal total
            scores = self.detector.max_scores(np.stack(chunk))
            hits.extend(total + int(i) for i in np.flatnonzero(scores >= self.threshold))
            total += len(chunk)
            chunk.clear()

        for frame in iter_frames(path, rotate=True):
            chunk.append(frame)
            if len(chunk) == self.batch_frames:
                flush()
        if chunk:
            flush()
        return total, hits

    def audit(self, source: Path, output: Path) -> VideoAudit:
        """Audit one input and its output, writing ``audit_path(output)`` (reused when newer than the
        output and made at the same threshold)."""
        path = audit_path(output)
        if path.is_file() and path.stat().st_mtime >= output.stat().st_mtime:
            try:
                previous = VideoAudit.from_json(json.loads(path.read_text()))
                if previous.threshold == self.threshold:
                    return previous
            except (ValueError, KeyError, TypeError):
                pass  # unreadable: audit again
        frames_before, before = self.frames_with_face(source)
        frames_after, after = self.frames_with_face(output)
        result = VideoAudit(str(source), str(output), self.threshold, frames_before, len(before), frames_after,
                            len(after), after)
        temporary = path.with_name(f".{path.name}.incomplete")
        temporary.write_text(json.dumps(result.as_json(), indent=1) + "\n")
        os.replace(temporary, path)
        return result


def summary(results: list[VideoAudit], threshold: float, listed: int = 10) -> str:
    """The lines that end ``anonpriv anonymize --face-audit``."""
    def share(part: int, whole: int) -> str:
        return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else f"{part}/{whole}"

    frames_before = sum(r.frames_before for r in results)
    frames_after = sum(r.frames_after for r in results)
    lines = [f"anonpriv anonymize: face audit (CenterFace, threshold {threshold:g}) of {len(results)} video(s): "
             f"frames with a face before {share(sum(r.faces_before for r in results), frames_before)}, after "
             f"{share(sum(r.faces_after for r in results), frames_after)}; videos with a face before "
             f"{share(sum(r.faces_before > 0 for r in results), len(results))}, after "
             f"{share(sum(r.faces_after > 0 for r in results), len(results))}; per video: <output>{AUDIT_SUFFIX}"]
    leaking = sorted((r for r in results if r.faces_after), key=lambda r: -r.faces_after / max(1, r.frames_after))
    for r in leaking[:listed]:
        lines.append(f"  face still found in {share(r.faces_after, r.frames_after)} frames of {r.output} "
                     f"(before: {share(r.faces_before, r.frames_before)})")
    if len(leaking) > listed:
        lines.append(f"  ... and {len(leaking) - listed} more video(s) with a face after")
    return "\n".join(lines)


def audit_outputs(pairs: Iterable[tuple[Path, Path]], threshold: float = DEFAULT_THRESHOLD, file=None) -> list[VideoAudit]:
    """Audit each ``(input, output)`` pair and print the summary (to stderr by default)."""
    auditor = FaceAudit(threshold)
    results = [auditor.audit(Path(source), Path(output)) for source, output in pairs]
    print(summary(results, threshold), file=file or sys.stderr)
    return results
