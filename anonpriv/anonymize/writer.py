"""Writing one anonymized video (:func:`anonymize_video`), its mask file, and the encoder check before any video.

Each output has the input's frame count, frame timestamps and size (see :class:`VideoWriter
<anonpriv.data.video_io.VideoWriter>` for the timing rule), encoded with ``--codec`` (libx264 by
default, CRF ``--crf``), optionally with the input's audio (``--copy-audio``). A display rotation
is applied before the model (the output is upright, with the rotated size); frames after a
resolution change are rescaled to the first frame's size. Decoding, the model and encoding overlap
(:mod:`anonpriv.anonymize.streams`).

An output is written under its :func:`~anonpriv.anonymize.jobs.incomplete_name` and moved into place
when complete, just after its record (:mod:`anonpriv.anonymize.records`). An input that ends early
(:func:`~anonpriv.data.video_io.truncation`, or a decoder error midway) is a failure and gets no
output, unless ``--allow-truncated`` (then :func:`~anonpriv.anonymize.jobs.truncated_name`, never
counted as done). Encoder settings are tried once on a test encode before any video
(:func:`check_write_options`).

With ``--save-masks`` and a method whose outputs include ``tubelet_mask``, a mask file
``<output>.masks.npz`` is written beside each video: ``tubelet_mask`` (windows, ...) as the method
returns it per clip, ``window_start`` (first input frame of each window; negative means padding
with the first frame), ``output_range`` (windows, 2: the frames ``[start, end)`` each window
wrote), plus ``clip_frames``, ``fps``, ``num_frames``, ``width``, ``height``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from anonpriv.anonymize.engine import SlidingClipAnonymizer
from anonpriv.anonymize.errors import AnonymizeError, VideoWriteError, first_line
from anonpriv.anonymize.jobs import MASK_SUFFIX, Job, incomplete_name, truncated_name
from anonpriv.anonymize.progress import FolderProgress, note
from anonpriv.anonymize.records import Request, describe_source, write_record
from anonpriv.anonymize.streams import BackgroundSink, prefetch, queue_depth
from anonpriv.data.video_io import (
    FrameLog,
    VideoInfo,
    VideoReadError,
    VideoTruncatedError,
    VideoWriter,
    default_video_codec,
    iter_frames,
    probe_video,
    truncation,
)


@dataclasses.dataclass
class WriteOptions:
    """Encoder settings of the outputs (see :class:`~anonpriv.data.video_io.VideoWriter`)."""

    codec: str | None = None
    crf: float | None = 18
    bitrate: int | None = None
    pix_fmt: str | None = None
    codec_options: dict | None = None
    copy_audio: bool = False


def check_write_options(options: WriteOptions, suffix: str) -> None:
    """Encode two small frames with ``options`` into a ``suffix`` file in a temporary folder, so
    that a bad --codec / --pix-fmt / --codec-option / --suffix fails once, before any video, with
    the fix (raises :class:`AnonymizeError`; nothing is left behind)."""
    codec = options.codec or default_video_codec()
    if options.pix_fmt is not None:
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
        if formats and options.pix_fmt not in formats:
            raise AnonymizeError(f"--pix-fmt {options.pix_fmt}: {codec} encodes {', '.join(formats)}; pick one of "
                                 "those (or drop --pix-fmt for yuv420p, yuv444p at odd sizes).")
    with tempfile.TemporaryDirectory(prefix="anonpriv-check-") as folder:
        path = Path(folder) / f"check{suffix}"
        try:
            with VideoWriter(path, 64, 64, Fraction(25), codec=codec, crf=options.crf, bitrate=options.bitrate,
                             pix_fmt=options.pix_fmt, codec_options=options.codec_options) as writer:
                writer.write(np.zeros((2, 64, 64, 3), np.uint8))
        except (av.FFmpegError, ValueError, OSError) as error:
            message = first_line(error)
            if "format does not support" in message or "Could not determine output format" in message:
                raise AnonymizeError(
                    f"--suffix {suffix} with --codec {codec}: {message}. Use --suffix .mp4 or .mkv (which hold "
                    "libx264, mpeg4, ffv1), or for .webm --codec libvpx-vp9.") from error
            if options.codec_options or "avcodec_open2" in message:
                raise AnonymizeError(
                    f"{codec} rejects the encoder settings {options.codec_options or {}} ({message}): check the "
                    "--codec-option names and values (e.g. preset=veryfast) and --crf / --bitrate.") from error
            raise AnonymizeError(f"--codec {codec} --suffix {suffix}: a test encode fails ({message}).") from error


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What :func:`anonymize_video` wrote: frames, the output file, and notes for the user (the
    reason a partial output was kept, rescaled frames)."""

    frames: int
    output: Path
    truncated: str | None = None
    notes: tuple[str, ...] = ()


def anonymize_video(job: Job, anonymizer: SlidingClipAnonymizer, options: WriteOptions,
                    progress: FolderProgress | None = None, allow_truncated: bool = False,
                    info: VideoInfo | None = None, request: Request | None = None) -> VideoResult:
    """Anonymize one video into ``job.output`` (and ``job.masks``).

    Nothing is left at the output paths unless the whole video was written. An input that ends
    early (fewer frames or a shorter span than its header states, or a decoder error midway) raises
    :class:`VideoTruncatedError` and leaves nothing; with ``allow_truncated`` the frames it has are
    written to :func:`~anonpriv.anonymize.jobs.truncated_name` of the output instead (never the
    output's own name, so a rerun does it again). Frames whose size differs from the first frame's
    are rescaled to it. ``info`` is the input's :func:`probe_video` with
    ``check_complete=not allow_truncated``, when the caller has it already (``anonpriv anonymize``
    probes every input first, for the progress total). ``request``: write the output's record
    (:mod:`anonpriv.anonymize.records`) beside it, just before the output is moved into place (not
    for a truncated output, which is never counted as done)."""
    source_description = describe_source(job.source) if request is not None else None
    if info is None:
        info = probe_video(job.source, check_complete=not allow_truncated)
    if options.copy_audio and not info.has_audio:
        note(f"anonpriv anonymize: {job.source.name} has no audio track to copy.")
    temporary = incomplete_name(job.output)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    mask_windows: list = []
    log = FrameLog()
    decode_errors: list[VideoReadError] = []

    def frames() -> Iterator[np.ndarray]:
        try:
            yield from iter_frames(job.source, size=(info.width, info.height), log=log, rotate=True)
        except VideoReadError as error:  # the decoder failed midway: the file is damaged
            if not allow_truncated or not log.times:
                raise VideoTruncatedError(f"{error}; the input is damaged or cut short, no output was kept. "
                                          f"Re-copy or re-encode it, or pass "
                                          "--allow-truncated to keep the frames before the damage.") from error
            decode_errors.append(error)

    try:
        try:
            with VideoWriter(temporary, *info.display_size, info.fps, codec=options.codec, crf=options.crf,
                             bitrate=options.bitrate, pix_fmt=options.pix_fmt, codec_options=options.codec_options,
                             audio_from=job.source if options.copy_audio else None,
                             timestamps=log.times, time_base=info.time_base) as writer:
                frame_bytes = 3 * info.display_size[0] * info.display_size[1]
                sink = BackgroundSink(writer.write, depth=anonymizer.output_queue_depth(frame_bytes))
                try:
                    decoded = prefetch(frames(), depth=queue_depth(frame_bytes, 2 * anonymizer.clip_frames, least=2))
                    for batch, windows in anonymizer.anonymize(decoded):
                        sink.put(batch)
                        mask_windows.extend(windows)
                        if progress is not None:
                            progress.update(len(batch))
                finally:
                    sink.close()
        except av.FFmpegError as error:  # decoding errors are VideoReadError already: this is the encoder
            raise VideoWriteError(f"{str(job.source)!r}: encoding failed ({first_line(error)}); no output was kept. "
                                  "Try another --codec / --pix-fmt, or drop --codec-option.") from error
        if writer.frames_written == 0:
            raise VideoReadError(f"{str(job.source)!r} decoded no frames.")
        problem = str(decode_errors[0]) if decode_errors else truncation(
            info.num_frames, info.duration, writer.frames_written, _span(log.times, info.fps), info.fps)
        output, masks = job.output, job.masks
        if problem:
            kept = truncated_name(job.output)
            if not allow_truncated:
                raise VideoTruncatedError(
                    f"{str(job.source)!r} ends early ({problem}): no output was kept. Re-copy or re-download it, "
                    f"or pass --allow-truncated to keep the frames it has as {kept.name}.")
            output = kept
            masks = None if job.masks is None else kept.with_name(kept.stem + MASK_SUFFIX)
        if masks is not None:
            _save_masks(masks, mask_windows, anonymizer, info)
        if request is not None and not problem:
            write_record(output, source_description, request, writer.frames_written)
        os.replace(temporary, output)
        if not problem:  # an earlier --allow-truncated run's partial output is stale now
            truncated_name(job.output).unlink(missing_ok=True)
    finally:
        temporary.unlink(missing_ok=True)
    notes = []
    if info.rotation:
        notes.append(f"turned upright by its {info.rotation} degree display rotation (as players show it): "
                     f"the output is {info.display_size[0]}x{info.display_size[1]} and carries no rotation")
    if log.rescaled:
        index, (width, height) = log.rescaled[0]
        notes.append(f"its resolution changes from {info.width}x{info.height} to {width}x{height} at frame {index}: "
                     f"{len(log.rescaled)} frame(s) were rescaled to {info.width}x{info.height}")
    return VideoResult(writer.frames_written, output, problem or None, tuple(notes))


def _span(times: list, fps) -> float | None:
    """Seconds covered by frames with these timestamps (the last one lasting ``1 / fps``)."""
    known = [t for t in times if t is not None]
    if len(known) != len(times) or not known:
        return None
    return float(max(known) - min(known) + 1 / Fraction(fps))


def _save_masks(path: Path, mask_windows: list, anonymizer: SlidingClipAnonymizer, info: VideoInfo) -> None:
    """Write the mask file (see the module docstring) under a temporary name, then move it into place."""
    lag = anonymizer.layout.lag
    temporary = incomplete_name(path)
    with open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            tubelet_mask=np.stack([mask for mask, _, _ in mask_windows]),
            window_start=np.array([start - lag for _, start, _ in mask_windows], dtype=np.int64),
            output_range=np.array([[start, end] for _, start, end in mask_windows], dtype=np.int64),
            clip_frames=np.int64(anonymizer.clip_frames),
            fps=np.float64(info.fps),
            num_frames=np.int64(mask_windows[-1][2] if mask_windows else 0),
            width=np.int64(info.display_size[0]),
            height=np.int64(info.display_size[1]),
        )
    os.replace(temporary, path)
