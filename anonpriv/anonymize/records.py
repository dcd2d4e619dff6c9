"""What an output of ``anonpriv anonymize`` was written from, so that a rerun resumes only real work.

Beside every output ``clip.mp4`` a small JSON record ``clip.anonpriv.json`` says which input it was
written from and how::

    {"format": 1, "anonpriv": "0.1.0",
     "source": {"path": "/data/a/clip.avi", "size": 1234567, "mtime_ns": ..., "fingerprint": "sha256:..."},
     "request": {"method": "blur", "method_args": {"relative_sigma": 0.02}, "checkpoint": null,
                 "clip_shape": null, "write": {"codec": "libx264", "crf": 18.0, ...}},
     "frames": 300}

The resume rule (:func:`resume_state`): an existing output counts as done only when its record
names the same input and the same request. The input is the same when its size and its
*fingerprint* match (a hash of the size and of the first and last MiB; a moved or copied input is
still the same, a different file of the same name is not). The request is the same when the method
(name and options, or the checkpoint's content hash), the clip shape and the encoder settings
match. An output with no record (written by something else, or by an anonpriv before records) or
with a record that differs is refused before anything is written, with the fix: ``--overwrite`` to
replace it, or another ``--output``.

The record is written before the output is moved into place (both atomically), so a run cut off in
between leaves a record without an output: the video is simply done again.

This module imports neither torch nor PyAV.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

RECORD_SUFFIX = ".anonpriv.json"
RECORD_FORMAT = 1
#: bytes hashed at each end of an input for its fingerprint
FINGERPRINT_BYTES = 1 << 20


def record_path(output: Path) -> Path:
    """Where the record of ``output`` lies: ``<stem>.anonpriv.json`` beside it."""
    return output.with_name(output.stem + RECORD_SUFFIX)


def fingerprint(path: Path, chunk: int = FINGERPRINT_BYTES) -> str:
    """``sha256:...`` of a file's size and its first and last ``chunk`` bytes (cheap on any size)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(chunk))
        if size > chunk:
            handle.seek(max(chunk, size - chunk))
            digest.update(handle.read(chunk))
    return "sha256:" + digest.hexdigest()


def file_hash(path: Path) -> str:
    """``sha256:...`` of a whole file (a checkpoint: its weights decide the output)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def describe_source(path: Path) -> dict:
    """The ``source`` part of a record for the input ``path``."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "fingerprint": fingerprint(path)}


def same_source(recorded: dict, current: dict) -> bool:
    """Whether a recorded input is the current one: same size and fingerprint (the path and the
    modification time may differ: the input was moved or copied)."""
    return recorded.get("size") == current["size"] and recorded.get("fingerprint") == current["fingerprint"]


def _plain(value):
    """``value`` as JSON would give it back (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@dataclasses.dataclass(frozen=True)
class Request:
    """How a run writes its outputs: what decides an output's content besides its input.

    Attributes:
        method: the registered method's name, or ``None`` with a checkpoint.
        method_args: the method's options as applied (footage defaults included).
        checkpoint: ``{"path", "hash"}`` of the checkpoint, or ``None``.
        clip_shape: ``[T, H, W]`` given with ``--clip-shape``, or ``None``.
        write: the encoder settings (codec, crf, bitrate, pixel format, options, audio, suffix).
    """

    method: str | None
    method_args: dict
    checkpoint: dict | None
    clip_shape: list[int] | None
    write: dict

    def as_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def summary(self) -> str:
        """A short description for messages: ``blur (relative_sigma=0.02)`` or ``checkpoint run.ckpt``."""
        return summarize(self.as_dict())


def summarize(request: dict) -> str:
    if request.get("checkpoint"):
        what = f"checkpoint {Path(request['checkpoint']['path']).name}"
    else:
        what = str(request.get("method"))
    args = request.get("method_args") or {}
    if args:
        what += " (" + ", ".join(f"{key}={value}" for key, value in sorted(args.items())) + ")"
    return what


def differences(recorded: dict, current: dict) -> list[str]:
    """The parts of two requests that differ, by name (empty: the same request). A checkpoint is
    compared by content, not by path."""
    names = []
    for key in ("method", "method_args", "clip_shape", "write"):
        if recorded.get(key) != current.get(key):
            names.append(key)
    old, new = recorded.get("checkpoint"), current.get("checkpoint")
    if (old is None) != (new is None) or (old and new and old.get("hash") != new.get("hash")):
        names.append("checkpoint")
    return names


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anonpriv")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def write_record(output: Path, source: dict, request: Request, frames: int) -> Path:
    """Write the record of ``output`` atomically (a temporary file renamed into place)."""
    path = record_path(output)
    record = {"format": RECORD_FORMAT, "anonpriv": _version(), "output": output.name, "source": source,
              "request": request.as_dict(), "frames": int(frames)}
    temporary = path.with_name(f".{path.name}.incomplete")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return path


def read_record(output: Path) -> dict | None:
    """The record of ``output``, or ``None`` when there is none or it cannot be read."""
    try:
        record = json.loads(record_path(output).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("source"), dict) else None


@dataclasses.dataclass(frozen=True)
class ResumeState:
    """What a rerun does with one output: ``todo`` (absent), ``done`` (same input and request) or
    ``conflict`` (something else is there; ``reason`` says what, in one sentence)."""

    kind: str
    reason: str = ""


def resume_state(source: Path, output: Path, request: Request, described: dict | None = None) -> ResumeState:
    """Whether ``output`` exists from ``source`` with ``request`` (see the module docstring)."""
    if not output.is_file():
        return ResumeState("todo")
    fix = "pass --overwrite to replace it, or choose another --output"
    record = read_record(output)
    if record is None:
        return ResumeState("conflict", f"{output} exists but has no {RECORD_SUFFIX} record of what it was written "
                                       f"from (another tool, or an older anonpriv), so it may not be anonymized "
                                       f"with this request; {fix}.")
    current = described or describe_source(source)
    recorded_source = record["source"]
    if not same_source(recorded_source, current):
        return ResumeState("conflict", f"{output} was written from {recorded_source.get('path')} "
                                       f"({recorded_source.get('size')} bytes), not from {source} "
                                       f"({current['size']} bytes); {fix}.")
    recorded_request = record.get("request") or {}
    changed = differences(recorded_request, request.as_dict())
    if changed:
        return ResumeState("conflict", f"{output} was written from {source} with {summarize(recorded_request)}, "
                                       f"but this run asks for {request.summary()} ({', '.join(changed)} "
                                       f"differ); {fix}.")
    return ResumeState("done")
