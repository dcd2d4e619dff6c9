"""Synthetic clips whose actions need appearance: one motion, several held objects.

On the default synthetic data (:mod:`anonpriv.data.synthetic`) every action is told apart by which
limbs move, so anything that keeps coarse motion keeps the action. Real actions are also recognised
from appearance: a tennis swing and a golf swing move alike and differ by the object in the hands.
This variant (``configs/data/synthetic_objects.yaml``) groups its classes by **motion family**; each
family is split into classes told apart **only** by a small object the figure holds in the hand of
the moving arm (and, optionally, a static scene prop):

* a family is one :class:`~anonpriv.data.synthetic.ActionSpec` (the ``clear`` preset's motion law:
  which limbs move, triangle-wave angles, the same period jitter); every class of a family uses it
  unchanged, so a class's poses have exactly the distribution of its family's other classes;
* the held object is a sprite of a few pixels (:data:`OBJECT_SPRITES`: ``racket``, ``bat``,
  ``club``), drawn head-down from the hand in every frame so it moves with the hand, in a colour
  drawn from one palette shared by every object (``object_color_cue`` > 0 makes the colour follow
  the object instead); the sprites share their size and handle and differ in the shape of their
  head at the one- to two-pixel scale, which mild blur keeps and downsampling or strong blur lose;
* the optional scene prop (``scene_prop``: probability per clip) is a static sprite of the class's
  own (:data:`PROP_SPRITES`) somewhere in the background.

Knobs for how much of the class appearance carries: ``families`` x ``objects`` classes (with 3
objects per family a model blind to the objects can reach one third of the classes at best),
``object_cell`` (the sprite's pixel size: larger objects survive more of an anonymizer), the colour
cue and the prop. The private attributes are the default's five, on the person as there; with
``attribute_visibility`` < 1 a present attribute is drawn only in that share of the clips (the
label, like VP-UCF's per-video labels, says the person has it; the clip may not show it: the face
turned away, no second person in view, ...), which bounds any attacker's AP below 100%.

Masks (``with_regions``): the default's ``action_region`` (moving parts, held objects included),
``privacy_region`` and ``person_region`` (the actors, without their objects), and ``object_region``
(the held objects and the scene prop, where nothing covers them). ``object_envelope`` (render only)
is the box every object sprite fits in, the same for every class, for masking the objects out
without leaving their outline.

Calibration against the paper's baselines: ``benchmarks/synthetic_objects_calibration.md``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from anonpriv.data.sources import SyntheticSource
from anonpriv.data.synthetic import (
    PRESETS,
    SPLITS,
    ActionSpec,
    ClipLabels,
    SyntheticClipGenerator,
    SyntheticPreset,
)

#: The motion families, in order: the ``clear`` preset's arm motions (each holds its object in the
#: hand of its first moving arm).
FAMILIES: tuple[ActionSpec, ...] = (
    ActionSpec("swing_right", {"right_arm": 0.0}, period=12.0),
    ActionSpec("swing_left", {"left_arm": 0.0}, period=12.0),
    ActionSpec("swing_both", {"right_arm": 0.0, "left_arm": 0.0}, period=12.0),
    ActionSpec("cross_right", {"right_arm": 0.0, "left_leg": 0.5}, period=12.0),
    ActionSpec("cross_left", {"left_arm": 0.0, "right_leg": 0.5}, period=12.0),
    ActionSpec("swim", {"right_arm": 0.0, "left_arm": 0.5}, period=12.0),
)


def _sprite(rows: str) -> np.ndarray:
    """A sprite from rows of ``.`` (nothing), ``#`` (the object's colour) and ``o`` (its second colour)."""
    return np.array([[".#o".index(c) for c in row] for row in rows.split()], dtype=np.uint8)


#: Held objects, 9 x 5 cells, drawn head-down: the handle's top cell sits on the hand's centre. One
#: envelope, one handle, heads of one size in two colours alike; they differ at the one-pixel scale:
#: a racket's strung head (a checkerboard mesh), a bat's taped barrel (bands across), a club's
#: grooved head (bands along). Block averages of 2 x 2 pixels are alike for the three.
OBJECT_SPRITES: dict[str, np.ndarray] = {
    "racket": _sprite("""
        ..#..
        ..#..
        ..#..
        #o#o#
        o#o#o
        #o#o#
        o#o#o
        #o#o#
        o#o#o
    """),
    "bat": _sprite("""
        ..#..
        ..#..
        ..#..
        #####
        ooooo
        #####
        ooooo
        #####
        ooooo
    """),
    "club": _sprite("""
        ..#..
        ..#..
        ..#..
        #o#o#
        #o#o#
        #o#o#
        #o#o#
        #o#o#
        #o#o#
    """),
}
OBJECTS: tuple[str, ...] = tuple(OBJECT_SPRITES)

#: Static scene props, one per object (7 x 7 cells): a net, a goal post, a flag.
PROP_SPRITES: dict[str, np.ndarray] = {
    "racket": _sprite("""
        #######
        #.#.#.#
        #######
        #.#.#.#
        #######
        #.....#
        #.....#
    """),
    "bat": _sprite("""
        .......
        #######
        #.....#
        #.....#
        #.....#
        #.....#
        #.....#
    """),
    "club": _sprite("""
        ####...
        #####..
        ####...
        #......
        #......
        #......
        #......
    """),
}

#: Object colours, shared by every object (and prop): vivid, apart from the background palette. An
#: object's second colour is another colour of the palette.
OBJECT_COLORS = np.array(
    [[0.98, 0.90, 0.10], [1.00, 0.50, 0.05], [0.95, 0.15, 0.60], [0.10, 0.95, 0.95], [0.98, 0.98, 0.98],
     [0.05, 0.05, 0.05]]
)


def objects_preset(families: int, objects: int) -> SyntheticPreset:
    """The ``objects`` preset with ``families`` motion families of ``objects`` classes each; class
    ``f * objects + o`` is family ``f`` holding object ``o``, named ``<family>_<object>``."""
    if not 1 <= families <= len(FAMILIES):
        raise ValueError(f"families={families} is out of range: choose 1 to {len(FAMILIES)}.")
    if not 1 <= objects <= len(OBJECTS):
        raise ValueError(f"objects={objects} is out of range: choose 1 to {len(OBJECTS)}.")
    if families * objects < 2:
        raise ValueError("families x objects must give at least 2 classes.")
    actions = tuple(dataclasses.replace(family, name=f"{family.name}_{obj}")
                    for family in FAMILIES[:families] for obj in OBJECTS[:objects])
    clear = PRESETS["clear"]
    return SyntheticPreset(f"objects-{families}x{objects}", actions, clear.geometry, clear.period_jitter)


class SyntheticObjectsGenerator(SyntheticClipGenerator):
    """The ``clear`` figure and motions, classes split by a held object (see the module docstring).

    Args:
        families, objects: motion families and objects per family (``families * objects`` classes).
        attribute_visibility: the share of clips that show a present private attribute (1: all;
            the default, 0.6, is the calibrated preset's, as in ``configs/data/synthetic_objects.yaml``).
        object_cell: pixels per sprite cell (1: 9 x 5-pixel objects).
        object_color_cue: probability that an object has its own colour instead of a shared palette's.
        scene_prop: probability that a clip shows its object's static scene prop.
        the rest: as :class:`~anonpriv.data.synthetic.SyntheticClipGenerator`.
    """

    region_keys = ("action_region", "privacy_region", "person_region", "object_region")

    def __init__(self, num_frames: int = 16, height: int = 64, width: int = 64, families: int = 3, objects: int = 3,
                 correlation: float = 0.0, attribute_rate: float = 0.5, attribute_visibility: float = 0.6,
                 object_cell: int = 1, object_color_cue: float = 0.0, scene_prop: float = 0.0,
                 noise_std: float = 0.02, seed: int = 0) -> None:
        for name, value in (("attribute_visibility", attribute_visibility), ("object_color_cue", object_color_cue),
                            ("scene_prop", scene_prop)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must lie in [0, 1].")
        if not isinstance(object_cell, int) or object_cell < 1:
            raise ValueError(f"object_cell={object_cell!r}: give a whole number of pixels per sprite cell (1 or more).")
        preset = objects_preset(families, objects)
        knobs = f"v{attribute_visibility:g}-c{object_cell}-k{object_color_cue:g}-p{scene_prop:g}"
        preset = dataclasses.replace(preset, name=f"{preset.name}-{knobs}")  # the render cache keys on it
        super().__init__(num_frames=num_frames, height=height, width=width, num_actions=families * objects,
                         correlation=correlation, attribute_rate=attribute_rate, noise_std=noise_std, seed=seed,
                         preset=preset)
        self.families, self.objects = families, objects
        self.attribute_visibility = attribute_visibility
        self.object_cell = object_cell
        self.object_color_cue = object_color_cue
        self.scene_prop = scene_prop

    def family_of(self, action: int) -> int:
        return action // self.objects

    def object_of(self, action: int) -> str:
        return OBJECTS[action % self.objects]

    # -- hooks ----------------------------------------------------------------------------------
    def _drawn_privacy(self, labels: ClipLabels, rng: np.random.Generator) -> np.ndarray:
        shown = rng.random(labels.privacy.shape) < self.attribute_visibility
        return np.where(shown, labels.privacy, 0.0)

    def _object_colors(self, labels: ClipLabels, rng: np.random.Generator) -> np.ndarray:
        """The object's two colours (2, 3): the first its own with probability ``object_color_cue``, else
        drawn from the shared palette; the second another colour of the palette."""
        own = rng.random() < self.object_color_cue
        first = OBJECTS.index(self.object_of(labels.action)) if own else int(rng.integers(len(OBJECT_COLORS)))
        second = (first + 1 + int(rng.integers(len(OBJECT_COLORS) - 1))) % len(OBJECT_COLORS)
        return OBJECT_COLORS[[first, second]]

    def _decorate_scene(self, video, regions, labels, rng) -> None:
        # Per-clip drawing state rides along with the masks; render() removes it.
        regions["object_envelope"] = np.zeros_like(regions["object_region"])
        regions["object_colors"] = self._object_colors(labels, rng)
        if rng.random() >= self.scene_prop:
            return
        sprite = self._scaled(PROP_SPRITES[self.object_of(labels.action)])
        T, H, W = regions["object_region"].shape
        top = int(rng.integers(0, H - sprite.shape[0] + 1))
        left = int(rng.integers(0, W - sprite.shape[1] + 1))
        colors = self._object_colors(labels, rng)
        cells = np.zeros((H, W), dtype=np.uint8)
        cells[top:top + sprite.shape[0], left:left + sprite.shape[1]] = sprite
        for value in (1, 2):
            video[:, cells == value] = colors[value - 1]
        regions["object_region"][:, cells > 0] = True
        regions["object_envelope"][:, top:top + sprite.shape[0], left:left + sprite.shape[1]] = True

    def _after_figure(self, video, regions, figure, pose, h, labels, rng) -> None:
        objects, envelope = regions["object_region"], regions["object_envelope"]
        objects &= ~figure  # the figure stands in front of the scene prop
        spec = self.preset.actions[labels.action]
        arm = next(part for part in spec.moving if part.endswith("arm"))
        sprite = self._scaled(OBJECT_SPRITES[self.object_of(labels.action)])
        sh, sw = sprite.shape
        hand_x, hand_y = self._hand(pose, h, arm)
        T, H, W = objects.shape
        cells = np.zeros((T, H, W), dtype=np.uint8)
        for t in range(T):
            # pixel coordinates: pixel i covers [i, i + 1) / H in frame heights
            top = int(math.floor(hand_y[t] * H))
            left = int(math.floor(hand_x[t] * H)) - sw // 2
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + sh, H), min(left + sw, W)
            if y1 <= y0 or x1 <= x0:
                continue
            cells[t, y0:y1, x0:x1] = sprite[y0 - top:y1 - top, x0 - left:x1 - left]
            envelope[t, y0:y1, x0:x1] = True
        for value in (1, 2):
            video[cells == value] = regions["object_colors"][value - 1]
        held = cells > 0
        objects |= held
        for key in ("privacy_region", "person_region"):
            regions[key] &= ~held  # the object covers what it is drawn over
        regions["action_region"] |= held  # it moves with the hand

    def _hand(self, pose: dict[str, np.ndarray], h: float, arm: str) -> tuple[np.ndarray, np.ndarray]:
        """The hand's centre per frame, in frame heights (as ``_draw_figure`` draws it)."""
        geo = self.preset.geometry
        sign = -1 if arm == "left_arm" else 1
        a = pose[arm]
        x0, y0 = pose["x"] + sign * geo.shoulder[0] * h, pose["y"] + geo.shoulder[1] * h
        return x0 + sign * np.sin(a) * geo.arm_len * h, y0 + np.cos(a) * geo.arm_len * h

    def _scaled(self, sprite: np.ndarray) -> np.ndarray:
        cell = self.object_cell
        return np.kron(sprite, np.ones((cell, cell), dtype=sprite.dtype)) if cell > 1 else sprite

    def render(self, split: str, index: int, with_regions: bool = False) -> dict[str, np.ndarray]:
        """As :meth:`SyntheticClipGenerator.render`, with ``object_region`` (and ``object_envelope``)
        among the masks."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {SPLITS}.")
        out = super().render(split, index, with_regions=True)
        out.pop("object_colors")
        if not with_regions:
            for key in (*self.region_keys, "object_envelope"):
                out.pop(key)
        return out


class SyntheticObjectsSource(SyntheticSource):
    """The appearance-rich synthetic source (``configs/data/synthetic_objects.yaml``).

    Args: as :class:`~anonpriv.data.SyntheticSource`, with ``families`` and ``objects`` instead of
    ``num_actions`` and ``preset``, and the knobs of :class:`SyntheticObjectsGenerator`.
    """

    def __init__(self, num_frames: int = 16, height: int = 64, width: int = 64, families: int = 3, objects: int = 3,
                 correlation: float = 0.0, attribute_rate: float = 0.5, attribute_visibility: float = 0.6,
                 object_cell: int = 1, object_color_cue: float = 0.0, scene_prop: float = 0.0,
                 noise_std: float = 0.02, num_train: int = 1024, num_val: int = 256, num_test: int = 512,
                 seed: int = 0, with_regions: bool = False) -> None:
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ValueError(f"{name}={value}: every split needs at least one clip.")
        self.generator = SyntheticObjectsGenerator(
            num_frames=num_frames, height=height, width=width, families=families, objects=objects,
            correlation=correlation, attribute_rate=attribute_rate, attribute_visibility=attribute_visibility,
            object_cell=object_cell, object_color_cue=object_color_cue, scene_prop=scene_prop,
            noise_std=noise_std, seed=seed)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.with_regions = with_regions
