"""Procedural privacy-action clips: the action lives in motion, private attributes in appearance.

Every clip is a pure function of ``(seed, split, index)``: nothing is stored on disk and any clip
can be regenerated on its own. A clip shows one figure (two when ``relationship`` is set) on a
static textured background.

* **Action** (what a utility model must recognise) is carried only by motion: which limbs move,
  in which phase, how fast, or whether the whole body travels. Every limb angle and the body
  position are drawn so that a *single frame* looks alike for every action; only several frames
  tell the actions apart.
* **Private attributes** (multi-label, mirroring VP-UCF's five) are static appearance cues that sit
  on the head and torso: ``face`` (a real face crop from scikit-image's LFW subset on the head,
  otherwise the back of the head), ``skin_color`` (dark vs light tone), ``gender`` (long hair and a
  dress-shaped torso), ``nudity`` (torso and sleeves in skin tone instead of clothes) and
  ``relationship`` (a second figure beside the first).

Two presets (:data:`PRESETS`) set the figure's proportions and the action list:

* ``clear`` (the default): a large figure with long, wide limbs whose moving ends lie well away
  from head and torso, and actions told apart by *which* limbs move. A tiny video model learns it
  in minutes, and at the default 8 x 8-pixel tubelets on 64 x 64 frames the moving and the private
  evidence fall in mostly different tubelets, so *where* a method keeps pixels can be measured.
* ``hard``: the original 32-pixel design, with thin limbs attached inside the torso's tubelets and
  actions that differ by phase, speed or travel (walk, jump); harder for every model.

Ground-truth pixel masks of the moving region, of the private region and of the whole person come
with each clip on request, so methods can be checked for *where* they look (and the blackening
baseline can black out the actor from the renderer's own mask).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

PRIVACY_ATTRIBUTES: tuple[str, ...] = ("face", "skin_color", "gender", "nudity", "relationship")
SPLITS: tuple[str, ...] = ("train", "val", "test")
LIMBS: tuple[str, ...] = ("left_arm", "right_arm", "left_leg", "right_leg")


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """One action class: which parts move, how, and how fast.

    ``moving`` maps a part (``left_arm``, ``right_arm``, ``left_leg``, ``right_leg``) to its phase
    offset in cycles; ``travel`` is the body's direction of travel (``(dx, dy)`` in frame heights per
    period) or ``None``; ``period`` is the length of one motion cycle in frames.
    """

    name: str
    moving: dict[str, float]
    period: float = 16.0
    travel: tuple[float, float] | None = None
    travel_wave: bool = False  # the body goes back and forth (a jump) instead of drifting


@dataclasses.dataclass(frozen=True)
class FigureGeometry:
    """Proportions of a figure in units of its height ``h`` (hip at the origin, y pointing down).

    Limb angles are in radians from "hanging straight down"; arms swing outwards and up, legs
    outwards. ``height`` / ``pair_height`` are the figure heights in frame heights for one figure
    and for each figure of a pair.
    """

    shoulder: tuple[float, float]
    hip: tuple[float, float]
    neck_y: float
    head_r: float
    arm_len: float
    arm_w: float
    leg_len: float
    leg_w: float
    torso_w: float
    hand_r: float
    arm_range: tuple[float, float]
    leg_range: tuple[float, float]
    height: float
    pair_height: float


@dataclasses.dataclass(frozen=True)
class SyntheticPreset:
    """A figure geometry, its action list and how much the motion speed varies between clips."""

    name: str
    actions: tuple[ActionSpec, ...]
    geometry: FigureGeometry
    period_jitter: float = 0.0  # each clip's period is scaled by a factor in [1 - j, 1 + j]

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.actions)


_CLEAR_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("wave_left", {"left_arm": 0.0}, period=12.0),
    ActionSpec("wave_right", {"right_arm": 0.0}, period=12.0),
    ActionSpec("wave_both", {"left_arm": 0.0, "right_arm": 0.0}, period=12.0),
    ActionSpec("kick_left", {"left_leg": 0.0}, period=12.0),
    ActionSpec("kick_right", {"right_leg": 0.0}, period=12.0),
    ActionSpec("march", {"left_leg": 0.0, "right_leg": 0.5}, period=12.0),
    ActionSpec("cross_left", {"left_arm": 0.0, "right_leg": 0.5}, period=12.0),
    ActionSpec("cross_right", {"right_arm": 0.0, "left_leg": 0.5}, period=12.0),
    ActionSpec("jumping_jack", {"left_arm": 0.0, "right_arm": 0.0, "left_leg": 0.0, "right_leg": 0.0}, period=12.0),
    ActionSpec("wave_left_fast", {"left_arm": 0.0}, period=5.0),
    ActionSpec("wave_right_fast", {"right_arm": 0.0}, period=5.0),
    ActionSpec("swim", {"left_arm": 0.0, "right_arm": 0.5}, period=12.0),
)

_HARD_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("wave_left", {"left_arm": 0.0}),
    ActionSpec("wave_right", {"right_arm": 0.0}),
    ActionSpec("wave_both", {"left_arm": 0.0, "right_arm": 0.0}),
    ActionSpec("swim", {"left_arm": 0.0, "right_arm": 0.5}),
    ActionSpec("march", {"left_leg": 0.0, "right_leg": 0.5}),
    ActionSpec("wave_left_fast", {"left_arm": 0.0}, period=6.0),
    ActionSpec("wave_right_fast", {"right_arm": 0.0}, period=6.0),
    ActionSpec("kick_left", {"left_leg": 0.0}),
    ActionSpec("kick_right", {"right_leg": 0.0}),
    ActionSpec("walk_right", {"left_leg": 0.0, "right_leg": 0.5}, travel=(0.3, 0.0)),
    ActionSpec("walk_left", {"left_leg": 0.0, "right_leg": 0.5}, travel=(-0.3, 0.0)),
    ActionSpec("jump", {}, period=12.0, travel=(0.0, -0.12), travel_wave=True),
)

PRESETS: dict[str, SyntheticPreset] = {
    "clear": SyntheticPreset(
        "clear", _CLEAR_ACTIONS,
        FigureGeometry(shoulder=(0.09, -0.32), hip=(0.06, 0.0), neck_y=-0.34, head_r=0.11, arm_len=0.36,
                       arm_w=0.10, leg_len=0.40, leg_w=0.11, torso_w=0.24, hand_r=0.065,
                       arm_range=(0.30 * math.pi, 0.92 * math.pi), leg_range=(0.06 * math.pi, 0.36 * math.pi),
                       height=0.76, pair_height=0.50),
        period_jitter=0.2,
    ),
    "hard": SyntheticPreset(
        "hard", _HARD_ACTIONS,
        FigureGeometry(shoulder=(0.08, -0.34), hip=(0.045, 0.0), neck_y=-0.38, head_r=0.14, arm_len=0.26,
                       arm_w=0.08, leg_len=0.40, leg_w=0.09, torso_w=0.17, hand_r=0.04,
                       arm_range=(0.15 * math.pi, 0.85 * math.pi), leg_range=(0.02 * math.pi, 0.28 * math.pi),
                       height=0.5, pair_height=0.42),
    ),
}
DEFAULT_PRESET = "clear"
ACTIONS: tuple[ActionSpec, ...] = PRESETS[DEFAULT_PRESET].actions
ACTION_NAMES: tuple[str, ...] = PRESETS[DEFAULT_PRESET].action_names

_LIGHT_SKIN = np.array([0.93, 0.76, 0.64])
_DARK_SKIN = np.array([0.42, 0.27, 0.17])
_HAIR_COLORS = np.array([[0.10, 0.07, 0.05], [0.35, 0.22, 0.10], [0.55, 0.22, 0.08], [0.20, 0.20, 0.22]])
_CLOTH_COLORS = np.array(
    [[0.80, 0.10, 0.10], [0.10, 0.30, 0.80], [0.10, 0.60, 0.20], [0.90, 0.85, 0.10],
     [0.50, 0.10, 0.60], [0.05, 0.05, 0.05], [0.95, 0.95, 0.95], [0.10, 0.70, 0.75]]
)
_BACKGROUND_COLORS = np.array(
    [[0.35, 0.55, 0.35], [0.40, 0.50, 0.70], [0.55, 0.55, 0.58], [0.45, 0.40, 0.60],
     [0.30, 0.45, 0.45], [0.60, 0.65, 0.75]]
)


@functools.lru_cache(maxsize=1)
def _face_bank() -> np.ndarray:
    """Grayscale face crops in [0, 1], shape (N, S, S): scikit-image's LFW subset, else procedural."""
    try:
        from skimage.data import lfw_subset

        faces = lfw_subset()[:100]  # the first 100 images of the subset are faces
        return faces.astype(np.float32)
    except Exception:  # pragma: no cover - scikit-image is a dependency, this is a safety net
        size = 25
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
        base = np.clip(1.0 - 0.3 * (xx**2 + yy**2), 0, 1)
        eyes = ((xx - 0.35) ** 2 + (yy + 0.2) ** 2 < 0.02) | ((xx + 0.35) ** 2 + (yy + 0.2) ** 2 < 0.02)
        mouth = (np.abs(yy - 0.45) < 0.06) & (np.abs(xx) < 0.35)
        face = base * (1 - 0.8 * eyes) * (1 - 0.6 * mouth)
        return face[None].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ClipLabels:
    action: int
    privacy: np.ndarray  # (5,) float32 0/1 over PRIVACY_ATTRIBUTES


class SyntheticClipGenerator:
    """Renders clips of shape (C=3, T, H, W) as uint8, deterministically from a seed.

    Args:
        num_frames: frames per clip (at least 4).
        height, width: frame size in pixels (at least 16 each).
        num_actions: how many of the preset's actions to use (2 to 12), in table order.
        correlation: 0 makes private attributes independent of the action; 1 makes each attribute
            a fixed function of the action (the hard case, where hiding privacy costs utility).
        attribute_rate: probability that an independent attribute is present.
        noise_std: per-pixel, per-frame sensor noise (in [0, 1] units).
        seed: the dataset seed; clip ``i`` of split ``s`` uses its own stream ``(seed, s, i)``.
        preset: ``clear`` (large figures, limb-identity actions; the default) or ``hard`` (the
            original small figures with phase, speed and travel actions); see :data:`PRESETS`.
            Subclasses may pass a :class:`SyntheticPreset` of their own.

    Subclasses can add to a clip through three hooks that the default presets leave empty (and that
    draw nothing from the clip's random stream there): :meth:`_drawn_privacy`, :meth:`_decorate_scene`
    and :meth:`_after_figure`; masks of their own go in :attr:`region_keys`.
    """

    #: the masks ``render(with_regions=True)`` returns (subclasses may add their own)
    region_keys: tuple[str, ...] = ("action_region", "privacy_region", "person_region")

    def __init__(
        self,
        num_frames: int = 16,
        height: int = 64,
        width: int = 64,
        num_actions: int = 8,
        correlation: float = 0.0,
        attribute_rate: float = 0.5,
        noise_std: float = 0.02,
        seed: int = 0,
        preset: str | SyntheticPreset = DEFAULT_PRESET,
    ) -> None:
        if isinstance(preset, SyntheticPreset):  # a variant built elsewhere (anonpriv.data.synthetic_objects)
            self.preset = preset
        elif preset not in PRESETS:
            raise ValueError(f"unknown synthetic preset {preset!r}: choose one of {sorted(PRESETS)}.")
        else:
            self.preset = PRESETS[preset]
        if num_frames < 4:
            raise ValueError(f"num_frames={num_frames} is too short to show motion: use at least 4 frames.")
        if height < 16 or width < 16:
            raise ValueError(
                f"frame size {height}x{width} is too small to draw a figure: use at least 16x16 pixels."
            )
        if not 2 <= num_actions <= len(self.preset.actions):
            raise ValueError(
                f"num_actions={num_actions} is out of range: choose 2 to {len(self.preset.actions)}."
            )
        if not 0.0 <= correlation <= 1.0:
            raise ValueError(f"correlation={correlation} must lie in [0, 1].")
        if not 0.0 < attribute_rate < 1.0:
            raise ValueError(f"attribute_rate={attribute_rate} must lie strictly between 0 and 1.")
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self.num_actions = num_actions
        self.correlation = correlation
        self.attribute_rate = attribute_rate
        self.noise_std = noise_std
        self.seed = seed
        # A fixed attribute prototype per action, used when attributes correlate with the action.
        proto_rng = np.random.default_rng([seed, 7919])
        self._prototypes = proto_rng.random((len(self.preset.actions), len(PRIVACY_ATTRIBUTES))) < 0.5
        ys = (np.arange(height) + 0.5) / height
        xs = (np.arange(width) + 0.5) / height  # both axes in units of the frame height
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        self._yy, self._xx = yy[None], xx[None]  # (1, H, W): broadcast against per-frame poses

    @property
    def action_names(self) -> list[str]:
        return list(self.preset.action_names[: self.num_actions])

    @property
    def privacy_names(self) -> list[str]:
        return list(PRIVACY_ATTRIBUTES)

    # -- labels ---------------------------------------------------------------------------
    def _streams(self, split: str, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {SPLITS}.")
        key = [self.seed, SPLITS.index(split), index]
        return np.random.default_rng(key + [0]), np.random.default_rng(key + [1])

    def labels(self, split: str, index: int) -> ClipLabels:
        """The labels of a clip, without rendering it."""
        label_rng, _ = self._streams(split, index)
        action = int(label_rng.integers(self.num_actions))
        follow = label_rng.random(len(PRIVACY_ATTRIBUTES)) < self.correlation
        independent = label_rng.random(len(PRIVACY_ATTRIBUTES)) < self.attribute_rate
        privacy = np.where(follow, self._prototypes[action], independent).astype(np.float32)
        return ClipLabels(action=action, privacy=privacy)

    # -- rendering ------------------------------------------------------------------------
    def render(self, split: str, index: int, with_regions: bool = False) -> dict[str, np.ndarray]:
        """Render clip ``index`` of ``split``.

        Returns ``video`` (3, T, H, W) uint8, ``action`` int, ``privacy`` (5,) float32 and, with
        ``with_regions``, boolean masks ``action_region``, ``privacy_region`` and ``person_region`` of
        shape (T, H, W): the pixels of moving parts, of the head, hair and torso, and of every part of
        every figure (the actors; what the blackening baseline blacks out).
        """
        labels = self.labels(split, index)
        _, rng = self._streams(split, index)
        face, skin_dark, gender, nude, pair = (bool(v) for v in self._drawn_privacy(labels, rng))
        spec = self.preset.actions[labels.action]
        geo = self.preset.geometry
        T, H, W = self.num_frames, self.height, self.width
        aspect = W / H

        frame = self._background(rng)  # (H, W, 3)
        video = np.broadcast_to(frame, (T, H, W, 3)).copy()
        regions = {key: np.zeros((T, H, W), dtype=bool) for key in self.region_keys}
        action_region, privacy_region = regions["action_region"], regions["privacy_region"]
        person_region = regions["person_region"]
        self._decorate_scene(video, regions, labels, rng)

        skin = (_DARK_SKIN if skin_dark else _LIGHT_SKIN) + rng.normal(0, 0.03, 3)
        hair = _HAIR_COLORS[rng.integers(len(_HAIR_COLORS))]
        shirt = _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))]
        pants = _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))]
        face_bank = _face_bank()
        face_img = face_bank[rng.integers(len(face_bank))]
        look = dict(skin=np.clip(skin, 0, 1), hair=hair, shirt=skin if nude else shirt, pants=pants,
                    face=face_img if face else None, long_hair=gender, dress=gender)

        figure_h = geo.pair_height if pair else geo.height
        slots = [(0.0, aspect)] if not pair else [(0.0, aspect / 2), (aspect / 2, aspect)]
        period = spec.period
        if self.preset.period_jitter:
            j = self.preset.period_jitter
            period *= rng.uniform(1.0 - j, 1.0 + j)
        for lo, hi in slots:
            poses = self._poses(rng, spec, period, figure_h, (lo, hi))
            figure = np.zeros((T, H, W), dtype=bool)
            self._draw_figure(video, action_region, privacy_region, poses, figure_h, look, spec, figure)
            person_region |= figure
            self._after_figure(video, regions, figure, poses, figure_h, labels, rng)

        if self.noise_std > 0:
            video = video + rng.normal(0.0, self.noise_std, video.shape)
        out = {
            "video": (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(3, 0, 1, 2),
            "action": labels.action,
            "privacy": labels.privacy,
        }
        if with_regions:
            out.update(regions)
        return out

    # -- hooks for variants (no-ops here: the default presets draw nothing more) ---------------
    def _drawn_privacy(self, labels: ClipLabels, rng: np.random.Generator) -> np.ndarray:
        """The private attributes the clip shows (the labels themselves here)."""
        return labels.privacy

    def _decorate_scene(self, video: np.ndarray, regions: dict[str, np.ndarray], labels: ClipLabels,
                        rng: np.random.Generator) -> None:
        """Paint static scenery into ``video`` (T, H, W, 3) before the figures are drawn."""

    def _after_figure(self, video: np.ndarray, regions: dict[str, np.ndarray], figure: np.ndarray,
                      pose: dict[str, np.ndarray], h: float, labels: ClipLabels, rng: np.random.Generator) -> None:
        """Called after each figure is drawn (``figure``: its pixels, (T, H, W); ``pose``: its per-frame
        hip position and limb angles; ``h``: its height in frame heights)."""

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        base = _BACKGROUND_COLORS[rng.integers(len(_BACKGROUND_COLORS))]
        xx, yy = self._xx[0], self._yy[0]
        texture = np.zeros_like(xx)
        for _ in range(3):
            freq = rng.uniform(3, 12)
            angle = rng.uniform(0, math.pi)
            phase = rng.uniform(0, 2 * math.pi)
            texture += np.sin(freq * 2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) + phase)
        tint = rng.uniform(-0.05, 0.05, 3)
        frame = base[None, None, :] + tint + 0.05 * texture[..., None]
        return np.clip(frame, 0, 1)

    def _poses(self, rng: np.random.Generator, spec: ActionSpec, period: float, h: float,
               x_slot: tuple[float, float]) -> dict[str, np.ndarray]:
        """Per-frame hip position and limb angles, shape (T,) each."""
        geo = self.preset.geometry
        T = self.num_frames
        t = np.arange(T, dtype=np.float64)
        cycles = t / period
        angles = {}
        for part in LIMBS:
            lo, hi = geo.arm_range if part.endswith("arm") else geo.leg_range
            if part in spec.moving:
                phase0 = rng.random()
                u = cycles + phase0 + spec.moving[part]
                tri = 1.0 - np.abs(2.0 * (u % 1.0) - 1.0)  # triangle wave in [0, 1]: uniform marginal
                angles[part] = lo + (hi - lo) * tri
            else:
                angles[part] = np.full(T, rng.uniform(lo, hi))
        # Body extent around the hip, in frame heights (arms raised may reach above the head).
        half_w = (geo.shoulder[0] + geo.arm_len + geo.hand_r) * h
        arm_top = geo.shoulder[1] + math.cos(geo.arm_range[1]) * geo.arm_len - geo.hand_r
        top = min(geo.neck_y - 2 * geo.head_r, arm_top) * h
        bottom = (geo.leg_len + geo.leg_w) * h
        x_lo, x_hi = x_slot[0] + half_w, x_slot[1] - half_w
        y_lo, y_hi = -top + 0.02, 1.0 - bottom - 0.02
        dx = dy = np.zeros(T)
        if spec.travel is not None:
            step = t / period
            if spec.travel_wave:
                step = 1.0 - np.abs(2.0 * ((step + rng.random()) % 1.0) - 1.0)
            dx = spec.travel[0] * step
            dy = spec.travel[1] * step
        # Start positions are drawn so the whole path stays inside the slot.
        x0 = rng.uniform(x_lo - min(dx.min(), 0), max(x_hi - max(dx.max(), 0), x_lo - min(dx.min(), 0) + 1e-6))
        y0 = rng.uniform(y_lo - min(dy.min(), 0), max(y_hi - max(dy.max(), 0), y_lo - min(dy.min(), 0) + 1e-6))
        return {"x": x0 + dx, "y": y0 + dy, **angles}

    def _draw_figure(self, video, action_region, privacy_region, pose, h, look, spec: ActionSpec,
                     person_region=None) -> None:
        """Paint one figure into every frame at once: pose values broadcast as (T, 1, 1); every pixel
        it paints is added to ``person_region`` when one is given."""
        geo = self.preset.geometry
        xx, yy = self._xx, self._yy  # (1, H, W)
        shape = video.shape[:3]
        private = np.zeros(shape, dtype=bool)  # the top-most part at each pixel is private
        moving = np.zeros(shape, dtype=bool)  # the top-most part at each pixel moves
        figure = np.zeros(shape, dtype=bool)  # any part of this figure
        moving_body = spec.travel is not None

        def column(values):
            return np.asarray(values, dtype=np.float64)[:, None, None]

        hx, hy = column(pose["x"]), column(pose["y"])

        def paint(mask, color, is_private=False, is_moving=False):
            video[mask] = color
            figure[mask] = True
            private[mask] = is_private
            moving[mask] = is_moving or moving_body

        # Legs (behind the torso).
        for side, sign in (("left_leg", -1), ("right_leg", 1)):
            a = column(pose[side])
            x0, y0 = hx + sign * geo.hip[0] * h, hy
            x1, y1 = x0 + sign * np.sin(a) * geo.leg_len * h, y0 + np.cos(a) * geo.leg_len * h
            paint(_segment(xx, yy, x0, y0, x1, y1, geo.leg_w * h), look["pants"], is_moving=side in spec.moving)
        # Long hair behind the head and shoulders.
        head_y = hy + (geo.neck_y - geo.head_r * 0.9) * h
        if look["long_hair"]:
            hair_mask = (np.abs(xx - hx) < 1.15 * geo.head_r * h) & (yy > head_y - geo.head_r * h) & (
                yy < hy + (geo.neck_y + 0.12) * h
            )
            paint(hair_mask, look["hair"], is_private=True)
        # Torso: a rectangle, or a dress widening down over the thighs.
        rel_y = (yy - hy) / h
        in_y = (rel_y > geo.neck_y) & (rel_y < (0.18 if look["dress"] else 0.02))
        half = np.where(look["dress"], geo.torso_w / 2 + 0.12 * np.clip(rel_y - geo.neck_y, 0, None), geo.torso_w / 2)
        torso = in_y & (np.abs(xx - hx) / h < half)
        paint(torso, look["shirt"], is_private=True)
        # Arms (sleeves in shirt colour) with skin-coloured hands.
        for side, sign in (("left_arm", -1), ("right_arm", 1)):
            a = column(pose[side])
            x0, y0 = hx + sign * geo.shoulder[0] * h, hy + geo.shoulder[1] * h
            x1, y1 = x0 + sign * np.sin(a) * geo.arm_len * h, y0 + np.cos(a) * geo.arm_len * h
            is_moving = side in spec.moving
            paint(_segment(xx, yy, x0, y0, x1, y1, geo.arm_w * h), look["shirt"], is_moving=is_moving)
            paint((xx - x1) ** 2 + (yy - y1) ** 2 < (geo.hand_r * h) ** 2, look["skin"], is_moving=is_moving)
        # Head: a face crop tinted with the skin tone, or the back of the head in hair colour.
        rx, ry = (xx - hx) / (geo.head_r * h), (yy - head_y) / (geo.head_r * h)
        head = rx**2 + ry**2 < 1.0
        if look["face"] is not None:
            size = look["face"].shape[0]
            iy = np.clip(((ry + 1) / 2 * size).astype(int), 0, size - 1)
            ix = np.clip(((rx + 1) / 2 * size).astype(int), 0, size - 1)
            shade = look["face"][iy[head], ix[head]]
            paint(head, np.clip(look["skin"][None, :] * (0.35 + 0.9 * shade[:, None]), 0, 1), is_private=True)
        else:
            paint(head, look["hair"], is_private=True)
        action_region |= moving
        privacy_region |= private
        if person_region is not None:
            person_region |= figure


def _segment(xx, yy, x0, y0, x1, y1, width) -> np.ndarray:
    """Pixels within ``width / 2`` of the segment (x0, y0)-(x1, y1); endpoints may be (T, 1, 1)."""
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy + 1e-12
    px, py = xx - x0, yy - y0
    t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
    return (px - t * dx) ** 2 + (py - t * dy) ** 2 <= (width / 2) ** 2


def validate_names(requested: Sequence[str] | None, known: Sequence[str], what: str) -> list[str]:
    """Check that every requested name is known; return them in the order given."""
    if requested is None:
        return list(known)
    unknown = [n for n in requested if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}: choose from {list(known)}.")
    if len(set(requested)) != len(requested):
        raise ValueError(f"{what} {list(requested)} lists a name twice.")
    return list(requested)
