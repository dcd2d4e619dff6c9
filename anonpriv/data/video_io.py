"""Reading and writing video files with PyAV, one job per function.

torchvision >= 0.28 no longer reads video, so every decode in anonpriv goes through here.

* :func:`probe_video` opens a file, reads its stream metadata and decodes the first frame: a
  cheap check that the file is a readable video, plus the frame count, rate and size.
* :func:`read_frames` decodes chosen frame indices to uint8 RGB (the dataset path).
* :func:`iter_frames` streams every frame of a file as uint8 RGB (the ``anonpriv anonymize`` path).
* :class:`VideoWriter` encodes uint8 RGB frames at a given rate, optionally with the audio of
  another file.

Threading: PyAV decodes with ``SLICE`` threading only: on one thread inside DataLoader worker
processes (``FRAME``/``AUTO`` threading can hang there), with FFmpeg's slice threads on the main
process. Frame threading is never used because it swallows FFmpeg's decode errors: a truncated
file would just end early instead of raising.

Completeness: :func:`probe_video` with ``check_complete=True`` also reads every packet of the
video stream (no decoding) and raises :class:`VideoTruncatedError` when the file holds fewer
frames than its header lists, or its packets end well before the duration the container states
(matroska/webm write no frame count, so there the duration is what counts).
Frames are always converted with ``to_ndarray(format="rgb24")``: RGB channel order, never BGR.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".ogv")


class VideoReadError(RuntimeError):
    """A video file could not be opened or decoded; the message names the file."""


class VideoTruncatedError(VideoReadError):
    """A video file ends before the frame count or duration its header states (cut short)."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a file without decoding all of it.

    ``num_frames`` comes from the container header when it has one, else from counting packets;
    ``fps`` is the stream's average frame rate; ``duration`` (seconds) is what the header states
    for the video stream (None when it states nothing usable), ``time_base`` its timestamps'
    unit. ``width`` and ``height`` are the first frame's as stored; ``rotation`` (degrees
    counterclockwise, a multiple of 90) is its display matrix's, which players apply.
    """

    path: str
    num_frames: int
    fps: Fraction
    width: int
    height: int
    has_audio: bool
    duration: float | None = None
    time_base: Fraction | None = None
    rotation: int = 0

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` as players show it: the size after :attr:`rotation`."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def _in_dataloader_worker() -> bool:
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


def _configure_decoder(stream, threads: int | None) -> None:
    """Worker processes (or ``threads=1``): slice threading on one thread, which cannot hang.
    Main process: slice threading on FFmpeg's choice of threads unless ``threads`` says otherwise."""
    stream.thread_type = "SLICE"  # never FRAME/AUTO: frame threading swallows decode errors
    if threads == 1 or (threads is None and _in_dataloader_worker()):
        stream.thread_count = 1
    else:
        stream.thread_count = threads or 0


def _open_video(path: str | os.PathLike):
    """``(container, first video stream)``; raises :class:`VideoReadError` naming the file."""
    path = str(path)
    if not os.path.isfile(path):
        raise VideoReadError(f"video {path!r} does not exist.")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoReadError(f"cannot open video {path!r}: {error}. Is the file complete and a video?") from error
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path!r} has no video stream.")
    return container, container.streams.video[0]


def _stated_duration(container, stream) -> float | None:
    """Seconds of video the header states: the stream's duration, else matroska's per-stream
    ``DURATION`` tag, else a matroska file's duration when the video is its only stream."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    # matroska written by other muxers states only the segment's duration; elsewhere (mpeg-ps, ...)
    # the container's duration may be a bitrate estimate, so it is not trusted
    if container.duration and len(container.streams) == 1 and "matroska" in container.format.name:
        return container.duration / 1_000_000
    return None


def _scan_packets(container, stream) -> tuple[int, float | None]:
    """``(non-empty packets, seconds from the first packet's start to the last one's end)`` of the
    video stream, read from the start without decoding."""
    count, first, end = 0, None, None
    for packet in container.demux(stream):
        if not packet.size:
            continue
        count += 1
        if packet.pts is not None and packet.time_base:
            start = packet.pts * packet.time_base
            stop = start + (packet.duration or 0) * packet.time_base
            first = start if first is None else min(first, start)
            end = stop if end is None else max(end, stop)
    return count, None if first is None else float(end - first)


def probe_video(path: str | os.PathLike, check_complete: bool = False) -> VideoInfo:
    """Open ``path``, read its video stream's metadata and decode its first frame.

    Raises :class:`VideoReadError` (naming the file) when the file is not a decodable video. With
    ``check_complete``, every packet of the video stream is read too (no decoding, about as fast as
    reading the file) and :class:`VideoTruncatedError` is raised for a file that ends early: fewer
    packets than the header's frame count, or packets ending before the stated duration (beyond
    :func:`missing_frame_tolerance`).
    """
    container, stream = _open_video(path)
    with container:
        try:
            stream.thread_type = "SLICE"
            stream.thread_count = 1
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            has_audio = bool(container.streams.audio)
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoReadError(f"{str(path)!r} contains no decodable video frame.")
            width, height = first.width, first.height
            duration = _stated_duration(container, stream)
            time_base = Fraction(stream.time_base) if stream.time_base else None
            rotation = _rotation(first)
            num_frames = stream.frames
            if num_frames <= 0 or check_complete:  # some mkv/webm headers have no frame count: count packets
                container.seek(0)
                packets, span = _scan_packets(container, stream)
                num_frames = num_frames if num_frames > 0 else packets
        except VideoReadError:
            raise
        except (av.FFmpegError, OSError, ValueError, StopIteration) as error:
            raise VideoReadError(f"cannot decode video {str(path)!r}: {error}") from error
    if width <= 0 or height <= 0 or num_frames <= 0:
        raise VideoReadError(f"{str(path)!r} reports {num_frames} frames of {width}x{height}: not a usable video.")
    fps = Fraction(fps) if fps else Fraction(25)
    if check_complete:
        problem = truncation(num_frames, duration, packets, span, fps)
        if problem:
            raise VideoTruncatedError(f"{str(path)!r} is truncated: {problem}; re-copy or re-download it.")
    return VideoInfo(str(path), int(num_frames), fps, width, height, has_audio, duration, time_base, rotation)


def _rotation(frame) -> int:
    """The frame's display-matrix rotation, degrees counterclockwise, rounded to a multiple of 90."""
    try:
        degrees = frame.rotation or 0
    except (AttributeError, ValueError):
        return 0
    return int(round(degrees / 90)) * 90 % 360


def truncation(expected_frames: int, duration: float | None, frames: int, span: float | None,
               fps: Fraction) -> str | None:
    """Why a stream of ``frames`` frames covering ``span`` seconds is short of a header stating
    ``expected_frames`` frames and ``duration`` seconds (None when it is not, within
    :func:`missing_frame_tolerance` frames)."""
    tolerance = missing_frame_tolerance(expected_frames)
    if frames < expected_frames - tolerance:
        return f"it holds {frames} of the {expected_frames} frames its header lists"
    if duration and span is not None:
        slack = max(tolerance / float(fps), 0.05 * duration)
        if span < duration - slack:
            return f"its frames cover {span:.2f} s of the {duration:.2f} s its header states"
    return None


def missing_frame_tolerance(expected_frames: int) -> int:
    """How many frames a file may decode short of its header's count before it counts as damaged:
    headers often over-count by a frame or two; a truncated file falls short by much more."""
    return max(2, expected_frames // 20)


def read_frames(path: str | os.PathLike, indices: Sequence[int], threads: int | None = None,
                expected_frames: int | None = None) -> np.ndarray:
    """Decode the frames at ``indices`` (0-based, any order, repeats allowed) of ``path``.

    Returns uint8 ``(len(indices), H, W, 3)`` RGB. Decoding runs from the start of the file and
    stops after the largest index; only requested frames are converted to RGB. If the file ends
    before an index (its header over-counted the frames), that index gets the last decoded frame,
    unless ``expected_frames`` (the header's count) is given and the file decoded fewer than
    ``expected_frames - missing_frame_tolerance(expected_frames)`` frames: then the file is
    truncated and :class:`VideoReadError` is raised. A file that decodes no frame at all, or a
    decoder error, raises :class:`VideoReadError` naming the file.
    """
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.size == 0:
        raise ValueError("read_frames needs at least one frame index.")
    if wanted.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(wanted.min())}.")
    needed = set(wanted.tolist())
    last_needed = int(wanted.max())
    decoded: dict[int, np.ndarray] = {}
    last_index, last_frame = -1, None
    container, stream = _open_video(path)
    with container:
        _configure_decoder(stream, threads)
        try:
            for index, frame in enumerate(container.decode(stream)):
                last_index, last_frame = index, frame
                if index in needed:
                    decoded[index] = frame.to_ndarray(format="rgb24")
                if index >= last_needed:
                    break
        except av.FFmpegError as error:
            raise VideoReadError(f"error while decoding {str(path)!r}: {error}") from error
        if last_frame is None:
            raise VideoReadError(f"{str(path)!r} decoded no frames: the file is damaged or not a video.")
        missing = needed - decoded.keys()  # all past the end of the file
        if missing and expected_frames is not None and (
                last_index + 1 < expected_frames - missing_frame_tolerance(expected_frames)):
            raise VideoReadError(
                f"{str(path)!r} decoded only {last_index + 1} of the {expected_frames} frames its header lists: "
                "the file is truncated or damaged; re-extract or re-download it."
            )
        if missing:
            tail = decoded[last_index] if last_index in decoded else last_frame.to_ndarray(format="rgb24")
            decoded.update((index, tail) for index in missing)
    return np.stack([decoded[int(i)] for i in wanted])


@dataclasses.dataclass
class FrameLog:
    """What :func:`iter_frames` saw while decoding: each frame's timestamp (seconds, exact; None
    when the frame has none) and the frames it rescaled (index, original ``(width, height)``)."""

    times: list = dataclasses.field(default_factory=list)
    rescaled: list = dataclasses.field(default_factory=list)


def iter_frames(path: str | os.PathLike, threads: int | None = None, size: tuple[int, int] | None = None,
                log: FrameLog | None = None, rotate: bool = False) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in order, as uint8 ``(H, W, 3)`` RGB.

    On the main process FFmpeg may decode with its own (slice) threads (``threads=None``); pass
    ``threads=1`` to stay on one thread. Decoder errors raise :class:`VideoReadError` naming the file.
    ``size`` ``(width, height)``: frames of another size (a stream whose resolution changes midway)
    are rescaled to it (``size`` is the stored size, before rotation); ``log`` records timestamps
    and rescaled frames. ``rotate``: frames are turned upright by their display matrix, as players
    show them.
    """
    container, stream = _open_video(path)
    with container:
        _configure_decoder(stream, threads)
        try:
            for frame in container.decode(stream):
                if log is not None:
                    log.times.append(None if frame.pts is None or frame.time_base is None
                                     else frame.pts * frame.time_base)
                quarter_turns = _rotation(frame) // 90 if rotate else 0
                if size is not None and (frame.width, frame.height) != tuple(size):
                    if log is not None:
                        log.rescaled.append((len(log.times) - 1, (frame.width, frame.height)))
                    frame = frame.reformat(width=size[0], height=size[1])
                array = frame.to_ndarray(format="rgb24")
                yield np.ascontiguousarray(np.rot90(array, quarter_turns)) if quarter_turns else array
        except av.FFmpegError as error:
            raise VideoReadError(f"error while decoding {str(path)!r}: {error}") from error


# -- writing ------------------------------------------------------------------------------------
CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")


def codec_available(name: str) -> bool:
    """Whether this PyAV build can encode with codec ``name``."""
    try:
        return av.Codec(name, "w").type == "video"
    except (av.FFmpegError, ValueError):
        return False


def default_video_codec() -> str:
    """``libx264`` when this PyAV build has it (the usual wheels do), else ``mpeg4``."""
    return "libx264" if codec_available("libx264") else "mpeg4"


def choose_pixel_format(codec: str, width: int, height: int) -> str:
    """The pixel format to encode ``width x height`` with ``codec``.

    ``yuv420p`` (the most playable) when both sizes are even; for odd sizes, which 4:2:0 cannot
    hold in libx264, ``yuv444p`` so the output keeps exactly the input size. Codecs without
    either fall back to their first supported format.
    """
    formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    if not formats:
        return "yuv420p"
    if width % 2 == 0 and height % 2 == 0 and "yuv420p" in formats:
        return "yuv420p"
    if (width % 2 or height % 2) and "yuv444p" in formats:
        return "yuv444p"
    return "yuv420p" if "yuv420p" in formats else formats[0]


AVFMT_VARIABLE_FPS = 0x0400  # libavformat: the container stores per-frame timestamps

AUDIO_FALLBACK_CODECS = ("aac", "libopus", "vorbis", "mp3")


def audio_codec_for(container) -> str | None:
    """The first of :data:`AUDIO_FALLBACK_CODECS` that output ``container`` holds and this PyAV
    build encodes (audio that cannot be copied is re-encoded with it: aac for mp4/mkv/mov, opus
    for webm)."""
    for name in AUDIO_FALLBACK_CODECS:
        try:
            encoder = av.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        if encoder.type == "audio" and (name in container.supported_codecs or encoder.name in container.supported_codecs):
            return name
    return None


class VideoWriter:
    """Encodes uint8 RGB frames to a file.

    Timing: with ``timestamps`` (a sequence, possibly still growing, holding the time in seconds of
    frame ``i`` or None), frame ``i`` keeps that time (on a ``time_base`` grid; variable frame
    rates and the input's start offset are kept, so copied audio stays in sync) in containers that
    store per-frame timestamps (mp4, mkv, webm, mov; not avi); a frame without
    one, or one not after its predecessor, comes ``1 / fps`` after the previous frame. Without
    ``timestamps`` frame ``i`` gets ``i / fps``: N frames at the input's average rate give the
    input's frame count and duration. ``crf`` sets constant-quality mode for x264/x265/VP9 (lower
    is better; ignored by other codecs); ``bitrate`` (bits/s) sets a target rate instead; codecs
    without CRF and no bitrate get a generous ``0.2 * W * H * fps`` bits/s. ``codec_options`` are
    passed to the encoder as they are (e.g. ``{"preset": "veryfast"}``).

    ``audio_from``: a file whose first audio stream is copied into the output when closing
    (packets copied as they are when the container accepts the codec, else re-encoded with
    :func:`audio_codec_for`: AAC, or Opus for webm).
    Use as a context manager; leaving the block with an exception closes the file without
    finishing it (the caller deletes it).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: Fraction,
        codec: str | None = None,
        crf: float | None = 18,
        bitrate: int | None = None,
        pix_fmt: str | None = None,
        codec_options: dict[str, str] | None = None,
        audio_from: str | os.PathLike | None = None,
        threads: int = 0,
        timestamps: Sequence | None = None,
        time_base: Fraction | None = None,
    ) -> None:
        codec = codec or default_video_codec()
        if not codec_available(codec):
            raise ValueError(f"codec {codec!r} is not available in this PyAV build: try libx264, mpeg4 or ffv1.")
        self.path = str(path)
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps).limit_denominator(65535)  # mpeg4 cannot store larger time-base denominators
        self.frames_written = 0
        self.audio_from = str(audio_from) if audio_from is not None else None
        self.audio_copied = False
        self._container = av.open(self.path, "w")
        # containers without AVFMT_VARIABLE_FPS (avi, ...) are constant-rate: frame i at i / fps there
        self.timestamps = timestamps if self._container.format.flags & AVFMT_VARIABLE_FPS else None
        if self.timestamps is None:
            self.time_base = 1 / self.fps
        else:  # mpeg4 stores at most 16-bit time-base denominators
            self.time_base = Fraction(time_base or Fraction(1, 1000))
            if self.time_base.denominator > 65535:
                self.time_base = Fraction(1, 60000)
        self._step = max(1, round(1 / (self.fps * self.time_base)))  # one frame in time-base units
        self._last_pts: int | None = None
        try:
            stream = self._container.add_stream(codec, rate=self.fps)
            if self.timestamps is not None:
                stream.codec_context.time_base = self.time_base
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = pix_fmt or choose_pixel_format(codec, self.width, self.height)
            stream.thread_type = "AUTO"
            stream.thread_count = threads
            options = dict(codec_options or {})
            if bitrate:
                stream.bit_rate = int(bitrate)
            elif codec in CRF_CODECS and crf is not None:
                options.setdefault("crf", f"{crf:g}")
            elif codec not in CRF_CODECS:
                stream.bit_rate = max(1_000_000, int(0.2 * self.width * self.height * float(self.fps)))
            if options:
                stream.options = options
            self._stream = stream
            self._audio_in, self._audio_out, self._audio_mode = self._add_audio_stream()
        except Exception:
            self._container.close()
            raise

    def _add_audio_stream(self):
        if self.audio_from is None:
            return None, None, None
        source = av.open(self.audio_from)
        if not source.streams.audio:
            source.close()
            return None, None, None
        audio = source.streams.audio[0]
        if audio.codec_context.name in self._container.supported_codecs:
            return source, self._container.add_stream_from_template(audio), "copy"
        codec = audio_codec_for(self._container)
        if codec is None:
            source.close()
            raise ValueError(f"the {self._container.format.name} container can hold none of the audio codecs "
                             f"{', '.join(AUDIO_FALLBACK_CODECS)}")
        rate = audio.codec_context.sample_rate or 48000
        if codec in ("libopus", "opus") and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000  # the only rates opus encodes; frames are resampled to it
        out = self._container.add_stream(codec, rate=rate)
        return source, out, "encode"

    def write(self, frames: np.ndarray) -> None:
        """Append uint8 frames ``(N, H, W, 3)`` (or one ``(H, W, 3)``) RGB of the writer's size."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"expected uint8 frames of shape (N, {self.height}, {self.width}, 3), got {frames.dtype} {frames.shape}"
            )
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = self._next_pts()
            frame.time_base = self.time_base
            self.frames_written += 1
            self._container.mux(self._stream.encode(frame))

    def _next_pts(self) -> int:
        index, times = self.frames_written, self.timestamps
        time = times[index] if times is not None and index < len(times) else None
        if time is None:
            pts = index * self._step if self._last_pts is None else self._last_pts + self._step
        else:
            pts = max(0, round(Fraction(time) / self.time_base))
            if self._last_pts is not None and pts <= self._last_pts:  # a timestamp that goes back
                pts = self._last_pts + self._step
        self._last_pts = pts
        return pts

    def _copy_audio(self) -> None:
        source, out = self._audio_in, self._audio_out
        audio = source.streams.audio[0]
        if self._audio_mode == "copy":
            for packet in source.demux(audio):
                if packet.dts is None:
                    continue
                packet.stream = out
                self._container.mux(packet)
        else:
            for frame in source.decode(audio):
                frame.pts = None
                self._container.mux(out.encode(frame))
            self._container.mux(out.encode(None))
        self.audio_copied = True

    def close(self, finish: bool = True) -> None:
        """Flush the encoder, copy the audio and close the file (``finish=False``: just close)."""
        if self._container is None:
            return
        try:
            if finish:
                self._container.mux(self._stream.encode(None))
                if self._audio_out is not None:
                    self._copy_audio()
        finally:
            if self._audio_in is not None:
                self._audio_in.close()
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finish=exc_type is None)


def is_video_file(path: Path) -> bool:
    """Whether ``path`` has a video file suffix (case-insensitive)."""
    return path.suffix.lower() in VIDEO_SUFFIXES
