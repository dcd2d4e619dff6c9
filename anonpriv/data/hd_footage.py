"""Camera-sized test footage with real faces, made in-process: the 1080p (or 4K, or any size) clip that
the footage tests and ``benchmarks/footage.py`` anonymize.

Real cameras record 1920 x 1080 and more, with faces from a few dozen to several hundred pixels
tall. :func:`face_scene_frames` renders such frames from scikit-image's photographs (no download):
the ``astronaut`` portrait twice (a large face, about a quarter of the frame height, and a small one,
about a fourteenth), and two faces of scikit-image's LFW subset scaled up, each drifting slowly over
a textured background (texture and motion make the encoder do real work, as on camera footage).
All sizes are relative to the frame height, so the same scene exists at any resolution.

    for frame in face_scene_frames(48, 1920, 1080): ...       # uint8 (1080, 1920, 3)
    write_face_scene(path, 48, 1920, 1080, fps=25)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

#: (photo, face box height as a fraction of the frame height, centre x, centre y as fractions, drift in
#: x and y over the clip as fractions of the frame) for each face of the scene
_LAYOUT = (
    ("astronaut", 0.55, 0.30, 0.45, 0.05, 0.02),
    ("astronaut", 0.14, 0.78, 0.25, -0.04, 0.01),
    ("lfw0", 0.30, 0.62, 0.68, 0.03, -0.02),
    ("lfw1", 0.20, 0.88, 0.70, -0.03, 0.0),
)


@functools.lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    """float32 RGB in [0, 1]: the astronaut's head and shoulders, or an LFW face (grey, as RGB)."""
    from skimage import data

    if name == "astronaut":
        return data.astronaut()[0:300, 110:370].astype(np.float32) / 255.0
    faces = data.lfw_subset()  # (200, 25, 25) float in [0, 1]
    face = faces[int(name[3:])].astype(np.float32)
    return np.repeat(face[:, :, None], 3, axis=2)


def _scaled(photo: np.ndarray, height: int) -> np.ndarray:
    from skimage.transform import resize

    width = max(1, round(photo.shape[1] * height / photo.shape[0]))
    return resize(photo, (height, width), anti_aliasing=True, order=1).astype(np.float32)


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colour gradient with blotchy texture, float32 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    base = np.stack([0.35 + 0.2 * xx, 0.42 + 0.1 * yy, 0.5 - 0.15 * xx], axis=-1)
    coarse = rng.random((max(2, height // 40), max(2, width // 40), 3)).astype(np.float32)
    from skimage.transform import resize

    texture = resize(coarse, (height, width), order=1).astype(np.float32)
    return np.clip(base + 0.15 * (texture - 0.5), 0, 1)


def face_scene_frames(num_frames: int, width: int = 1920, height: int = 1080, seed: int = 0) -> Iterator[np.ndarray]:
    """``num_frames`` uint8 RGB frames ``(height, width, 3)`` of the scene (see the module docstring),
    rendered one at a time (memory stays at one frame however long the clip)."""
    if num_frames < 1 or width < 64 or height < 64:
        raise ValueError(f"need at least one frame of at least 64 x 64 pixels, got {num_frames} of {width}x{height}.")
    background = _background(width, height, seed)
    sprites = [(_scaled(_photo(name), max(8, round(size * height))), cx, cy, dx, dy)
               for name, size, cx, cy, dx, dy in _LAYOUT]
    for t in range(num_frames):
        progress = t / max(1, num_frames - 1)
        frame = background.copy()
        for sprite, cx, cy, dx, dy in sprites:
            h, w = sprite.shape[:2]
            left = round((cx + dx * progress) * width - w / 2)
            top = round((cy + dy * progress) * height - h / 2)
            y1, x1, y2, x2 = max(0, top), max(0, left), min(height, top + h), min(width, left + w)
            if y2 > y1 and x2 > x1:
                frame[y1:y2, x1:x2] = sprite[y1 - top:y2 - top, x1 - left:x2 - left]
        yield (frame * 255.0 + 0.5).astype(np.uint8)


def write_face_scene(path: str | Path, num_frames: int, width: int = 1920, height: int = 1080, fps: int = 25,
                     codec: str | None = None, seed: int = 0, crf: int = 23) -> Path:
    """Encode :func:`face_scene_frames` to ``path`` (libx264 CRF ``crf``, preset veryfast, yuv420p)."""
    import av

    from anonpriv.data.video_io import default_video_codec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or default_video_codec()
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in face_scene_frames(num_frames, width, height, seed):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path
