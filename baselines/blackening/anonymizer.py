"""blackening's anonymizer (``f_A`` of :class:`~anonpriv.baselines.blackening.BlackeningBaseline`) with torch
alone: the actor (person) region of every frame is blacked out, nothing else changes.

Where the actors are comes from one of two places:

* **the batch's person mask** (``person_region``, bool ``(B, T, H, W)``): the synthetic renderer's own
  mask of every figure's pixels (``SyntheticSource(with_regions=True)``). The method passes it in
  (:meth:`~anonpriv.baselines.blackening.BlackeningBaseline.batch_anonymizer_outputs`); no detector is built.
* **a person detector** otherwise (real footage, ``anonpriv anonymize``): a torchvision COCO detector
  (:data:`PERSON_DETECTORS`), its boxes of class ``person`` scoring at least ``score_threshold``.
  Weights by name through torchvision's own download and cache, or from a local file
  (``detector_weights_file``); without internet and without the file the first detection fails with
  one line naming ``detector_weights_file`` and the file to fetch. The detector is built the first
  time a frame needs it (never when masks are given) and runs on the frames' device. Its boxes are
  remembered per frame content, so a frame is detected once however often it is seen (the 5
  overlapping test clips of a video, every evaluation epoch, a video anonymized again).

``region``: ``box`` (the default; the literature's "blackening" blacks out the actor's bounding box)
blacks each actor's bounding box, grown by ``margin`` times its size per side; from a mask, each run
of columns the mask occupies is one actor's box (figures side by side are told apart by the empty
columns between them). ``mask`` blacks the mask's own pixels (needs masks: a detector gives boxes).

This module imports neither the methods' base class nor Lightning (torchvision only when a detector
is built), so ``anonpriv anonymize --method blackening`` builds the anonymizer alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from anonpriv.baselines.frame_cache import FrameResultCache

#: the batch key of the person mask (bool (B, T, H, W)) the synthetic source serves with ``with_regions``
PERSON_REGION_KEY = "person_region"

#: torchvision COCO detectors a blackening can use, by name -> their weights enum in
#: ``torchvision.models.detection``; the first is the default (fast: 320-px input on a MobileNetV3)
TORCHVISION_DETECTORS = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "maskrcnn_resnet50_fpn": "MaskRCNN_ResNet50_FPN_Weights",
}
DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"

#: frames per detector call
DETECT_BATCH = 8

#: A person detector: float frames ``(N, 3, H, W)`` in [0, 1] -> per frame a float tensor ``(k, 5)`` of
#: ``[x1, y1, x2, y2, score]`` person boxes in the frames' pixels.
PersonDetector = Callable[[torch.Tensor], list[torch.Tensor]]


class TorchvisionPersonDetector:
    """A torchvision COCO detector reduced to its ``person`` boxes (a plain object, not a submodule:
    its weights are no part of a method's state or parameters).

    Args:
        name: a key of :data:`TORCHVISION_DETECTORS`.
        weights_file: a local copy of the detector's COCO weights (never downloaded); ``None``: the
            weights by name through torchvision's download and cache (``$TORCH_HOME``).
    """

    def __init__(self, name: str, weights_file: str | None = None) -> None:
        import torchvision.models.detection as detection

        from anonpriv.models.weights import WeightsDownloadError, load_local_weights, load_torchvision_state_dict

        weights = getattr(detection, TORCHVISION_DETECTORS[name]).DEFAULT
        categories = weights.meta["categories"]
        self.person = categories.index("person")
        model = getattr(detection, name)(weights=None, weights_backbone=None, num_classes=len(categories))
        if weights_file:
            path = Path(weights_file)
            if not path.is_file():
                raise FileNotFoundError(
                    f"detector_weights_file {str(path)!r} does not exist: pass a local copy of {weights.url} "
                    f"(the COCO weights of {name}; a file is never downloaded).")
            load_local_weights(model, path, strict=True)
        else:
            try:
                model.load_state_dict(load_torchvision_state_dict(weights, file_option="detector_weights_file"))
            except WeightsDownloadError as error:
                raise WeightsDownloadError(
                    f"{error} On synthetic clips no detector is needed: serve the renderer's person mask "
                    "(data.source.init_args.with_regions: true).") from error
        self.model = model.eval().requires_grad_(False)
        self.name = name

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> list[torch.Tensor]:
        if next(self.model.parameters()).device != frames.device:
            self.model.to(frames.device)
        found = []
        with torch.autocast(frames.device.type, enabled=False):
            for start in range(0, len(frames), DETECT_BATCH):
                for out in self.model(list(frames[start:start + DETECT_BATCH].float())):
                    keep = out["labels"] == self.person
                    found.append(torch.cat([out["boxes"][keep], out["scores"][keep, None]], dim=1).float())
        return found


#: name -> ``builder(weights_file) -> PersonDetector``; tests may add a stub here.
PERSON_DETECTORS: dict[str, Callable[[str | None], PersonDetector]] = {
    name: functools.partial(TorchvisionPersonDetector, name) for name in TORCHVISION_DETECTORS
}


def detector_weights_cached(name: str = DEFAULT_DETECTOR) -> bool:
    """Whether torchvision's cache (``$TORCH_HOME/hub/checkpoints``) holds the COCO weights of the
    detector ``name``, so building it needs no download."""
    import torchvision.models.detection as detection

    url = getattr(detection, TORCHVISION_DETECTORS[name]).DEFAULT.url
    return (Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]).is_file()


def detector_available(detector: str | None = DEFAULT_DETECTOR, detector_weights_file: str | None = None) -> bool:
    """Whether a blackening with these options can detect people without downloading anything: its
    weights file exists, or torchvision's cache holds its detector's weights (a stub registered in
    :data:`PERSON_DETECTORS` needs none). For benchmarks that run every method on footage offline."""
    if detector is None:
        return False
    if detector_weights_file:
        return Path(detector_weights_file).is_file()
    return detector not in TORCHVISION_DETECTORS or detector_weights_cached(detector)


# -- boxes ------------------------------------------------------------------------------------------
def mask_boxes(mask: torch.Tensor) -> torch.Tensor:
    """The bounding boxes of a person mask ``(N, H, W)``: per frame, one box per run of columns the
    mask occupies, ``(N, K, 4)`` long ``[x1, y1, x2, y2]`` with exclusive ends (``K``: the most runs
    in a frame; frames with fewer get empty ``[0, 0, 0, 0]`` boxes)."""
    n, h, w = mask.shape
    device = mask.device
    mask = mask.bool()
    columns = mask.any(dim=1)  # (N, W)
    begins = columns.clone()
    begins[:, 1:] &= ~columns[:, :-1]
    run = torch.cumsum(begins.long(), dim=1) * columns  # (N, W): 1..K inside the k-th run, 0 outside
    k = int(run.max()) if run.numel() else 0
    if k == 0:
        return torch.zeros(n, 0, 4, dtype=torch.long, device=device)
    rows = torch.arange(h, device=device).view(1, h, 1)
    top = torch.where(mask, rows, h).amin(dim=1)  # (N, W): first masked row of each column
    bottom = torch.where(mask, rows, -1).amax(dim=1) + 1  # one past the last
    x = torch.arange(w, device=device).expand(n, w)

    def per_run(values: torch.Tensor, start: int, how: str) -> torch.Tensor:
        out = torch.full((n, k + 1), start, dtype=torch.long, device=device)
        return out.scatter_reduce(1, run, values, reduce=how)[:, 1:]  # run 0 (no mask) dropped

    boxes = torch.stack([per_run(x, w, "amin"), per_run(top, h, "amin"), per_run(x + 1, 0, "amax"),
                         per_run(bottom, 0, "amax")], dim=-1)
    empty = (boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])
    return boxes.masked_fill(empty.unsqueeze(-1), 0)


def expand_boxes(boxes: torch.Tensor, margin: float, height: int, width: int) -> torch.Tensor:
    """Boxes ``(..., 4)`` ``[x1, y1, x2, y2]`` grown by ``margin`` times their width and height on
    every side, as whole pixels (outward rounding, exclusive ends) clipped to the frame: long."""
    x1, y1, x2, y2 = boxes.double().unbind(-1)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return torch.stack([torch.floor(x1 - dx).clamp(0, width), torch.floor(y1 - dy).clamp(0, height),
                        torch.ceil(x2 + dx).clamp(0, width), torch.ceil(y2 + dy).clamp(0, height)], dim=-1).long()


def boxes_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The pixels inside any of each frame's boxes: long ``(N, K, 4)`` (exclusive ends) -> bool ``(N, H, W)``."""
    n = boxes.shape[0]
    if boxes.shape[1] == 0:
        return torch.zeros(n, height, width, dtype=torch.bool, device=boxes.device)
    ys = torch.arange(height, device=boxes.device)
    xs = torch.arange(width, device=boxes.device)
    in_rows = ((ys >= boxes[..., 1:2]) & (ys < boxes[..., 3:4])).float()  # (N, K, H)
    in_columns = ((xs >= boxes[..., 0:1]) & (xs < boxes[..., 2:3])).float()  # (N, K, W)
    return torch.bmm(in_rows.transpose(1, 2), in_columns) > 0


def _padded(per_frame: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Per-frame boxes ``(k_i, 4)`` as one ``(N, max k_i, 4)`` tensor, empty boxes as padding."""
    k = max((len(b) for b in per_frame), default=0)
    out = torch.zeros(len(per_frame), k, 4, device=device)
    for i, found in enumerate(per_frame):
        if len(found):
            out[i, :len(found)] = found.to(device)
    return out


def _uint8_frames(frames: torch.Tensor) -> torch.Tensor:
    """Float frames ``(N, 3, H, W)`` in [0, 1] -> uint8 ``(N, H, W, 3)`` (what a video file holds)."""
    return frames.detach().clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1)


def _mask_needed() -> ValueError:
    return ValueError(
        "region='mask' needs the person mask in the batch (synthetic data with "
        f"data.source.init_args.with_regions: true, key {PERSON_REGION_KEY!r}); a detector gives boxes: "
        "use region: box.")


class Blackening(nn.Module):
    """Black out the actors: from the batch's person mask when given, else from a person detector.

    Args:
        region: ``box`` (each actor's bounding box) or ``mask`` (the mask's own pixels; needs masks).
        margin: boxes grow by this fraction of their width / height on every side (0: tight boxes).
        detector: the person detector for frames without a mask (:data:`PERSON_DETECTORS`), or
            ``None`` to require masks.
        detector_weights_file: a local copy of the detector's weights (never downloaded); ``None``:
            by name through torchvision's download and cache.
        score_threshold: the least detector score of a person box that is blacked out.
    """

    #: frames whose detections are remembered (a few dozen bytes each)
    cache_frames: int = 200_000

    def __init__(self, region: Literal["box", "mask"] = "box", margin: float = 0.0,
                 detector: str | None = DEFAULT_DETECTOR, detector_weights_file: str | None = None,
                 score_threshold: float = 0.5) -> None:
        super().__init__()
        if region not in ("box", "mask"):
            raise ValueError(f"region={region!r}: use 'box' (each actor's bounding box) or 'mask' (the mask's pixels).")
        if not margin >= 0:
            raise ValueError(f"margin={margin} must be non-negative (a fraction of the box size added per side).")
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold={score_threshold} must lie strictly between 0 and 1.")
        if detector is not None and detector not in PERSON_DETECTORS:
            raise ValueError(f"detector={detector!r} is unknown: use one of {sorted(PERSON_DETECTORS)} "
                             "(or null to black out the batch's person masks only).")
        if detector is None and detector_weights_file:
            raise ValueError(f"detector_weights_file={detector_weights_file!r} is set but detector is null: "
                             "name the detector the file holds, or drop the file.")
        self.region = region
        self.margin = float(margin)
        self.detector_name = detector
        self.detector_weights_file = detector_weights_file
        self.score_threshold = float(score_threshold)
        self._detector: PersonDetector | None = None  # built on first use: never when masks are given
        self._cache = FrameResultCache(b"anonpriv-people", self.cache_frames)

    def extra_repr(self) -> str:
        return (f"region={self.region!r}, margin={self.margin}, detector={self.detector_name!r}, "
                f"score_threshold={self.score_threshold}")

    # -- detection ----------------------------------------------------------------------------------
    def load_detector(self) -> PersonDetector:
        """The person detector, built (and its weights read or downloaded) on the first call."""
        if self._detector is None:
            if self.detector_name is None:
                raise ValueError(
                    "blackening has no person mask for these frames and detector is null: serve the synthetic "
                    f"renderer's masks (data.source.init_args.with_regions: true, batch key {PERSON_REGION_KEY!r}) "
                    f"or set detector (e.g. {DEFAULT_DETECTOR!r}).")
            self._detector = PERSON_DETECTORS[self.detector_name](self.detector_weights_file)
        return self._detector

    def detect(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Person boxes ``(k, 5)`` ``[x1, y1, x2, y2, score]`` of each frame, float ``(N, 3, H, W)`` in
        [0, 1] or uint8 ``(N, H, W, 3)``, through the cache: a frame whose content was detected
        before is not detected again (both kinds of frame are detected as uint8 pixels, so they share it)."""
        pixels = frames if frames.dtype == torch.uint8 else _uint8_frames(frames)
        host = pixels.to("cpu").contiguous().numpy()

        def detect_new(indices: list[int]) -> list[torch.Tensor]:
            images = pixels[indices].permute(0, 3, 1, 2).float().div_(255.0)
            return [found.detach().to("cpu", torch.float32).reshape(-1, 5) for found in self.load_detector()(images)]

        return self._cache.lookup(host, detect_new)

    def detected_boxes(self, frames: torch.Tensor) -> torch.Tensor:
        """The pixel boxes blacked out in detected frames (see :meth:`detect`): long ``(N, K, 4)``."""
        height, width = frames.shape[1:3] if frames.dtype == torch.uint8 else frames.shape[-2:]
        kept = [found[found[:, 4] >= self.score_threshold, :4] for found in self.detect(frames)]
        return expand_boxes(_padded(kept, frames.device), self.margin, height, width)

    # -- blackening ---------------------------------------------------------------------------------
    def hidden_region(self, video: torch.Tensor, person_region: torch.Tensor | None = None) -> torch.Tensor:
        """The pixels blacked out in ``video`` (B, 3, T, H, W): bool ``(B, T, H, W)``."""
        b, c, t, h, w = video.shape
        if person_region is None:
            if self.region == "mask":
                raise _mask_needed()
            boxes = self.detected_boxes(video.transpose(1, 2).reshape(b * t, c, h, w))
            return boxes_mask(boxes, h, w).reshape(b, t, h, w)
        region = torch.as_tensor(person_region, device=video.device).bool()
        if tuple(region.shape) != (b, t, h, w):
            raise ValueError(f"{PERSON_REGION_KEY} has shape {tuple(region.shape)}, but clips of shape "
                             f"{tuple(video.shape)} need (B, T, H, W) = {(b, t, h, w)}.")
        if self.region == "mask":
            return region
        boxes = expand_boxes(mask_boxes(region.reshape(b * t, h, w)), self.margin, h, w)
        return boxes_mask(boxes, h, w).reshape(b, t, h, w)

    def forward(self, video: torch.Tensor, person_region: torch.Tensor | None = None) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"expected an RGB clip (B, 3, T, H, W), got a tensor of shape {tuple(video.shape)}.")
        return video.masked_fill(self.hidden_region(video, person_region).unsqueeze(1), 0.0)

    def forward_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` of one stream (no masks: the detector), actors blacked out; the
        same as :meth:`forward` on them as one clip. Frames stay uint8; they are detected a few at a time."""
        if self.region == "mask":
            raise _mask_needed()
        out = frames
        for start in range(0, len(frames), DETECT_BATCH):
            boxes = self.detected_boxes(frames[start:start + DETECT_BATCH]).tolist()
            for offset, found in enumerate(boxes):
                for x1, y1, x2, y2 in found:
                    if x2 > x1 and y2 > y1:
                        if out is frames:
                            out = frames.clone()
                        out[start + offset, y1:y2, x1:x2] = 0
        return out


__all__ = ["Blackening", "DEFAULT_DETECTOR", "PERSON_DETECTORS", "PERSON_REGION_KEY", "TORCHVISION_DETECTORS",
           "TorchvisionPersonDetector", "boxes_mask", "detector_available", "detector_weights_cached", "expand_boxes",
           "mask_boxes"]
