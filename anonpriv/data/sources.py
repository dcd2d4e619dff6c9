"""Dataset sources: where clips come from.

A :class:`VideoSource` knows its label space as soon as it is constructed (so LightningCLI can link
``num_actions`` and ``num_privacy`` into a model before any video is read) and builds one
:class:`ClipDataset` per split. Every item of every source is a dict::

    video    float32 (C, T, H, W) in [0, 1]
    action   int64 scalar
    privacy  float32 (P,) of 0/1
    id       str, the video the clip comes from (several test clips of one video share it)

The synthetic source is the built-in default; the real-video readers live beside it.
"""

from __future__ import annotations

import abc
import collections
import threading
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from anonpriv.data.synthetic import SPLITS, SyntheticClipGenerator


class ClipDataset(Dataset, abc.ABC):
    """A split of a source. ``labels()`` returns every item's labels without decoding any video."""

    @abc.abstractmethod
    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """``(actions (N,) int64, privacy (N, P) float32)`` for the N items, in item order."""


class VideoSource(abc.ABC):
    """Base class of dataset sources used by :class:`~anonpriv.data.VideoPrivacyDataModule`."""

    #: whether ``dataset("train", epoch=e)`` draws new clips for each epoch (generated sources only)
    supports_fresh_epochs: bool = False

    @property
    @abc.abstractmethod
    def action_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def privacy_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def clip_shape(self) -> tuple[int, int, int]:
        """``(T, H, W)`` of the clips this source yields (models size themselves from it)."""

    @abc.abstractmethod
    def dataset(self, split: str) -> ClipDataset:
        """The dataset of ``split`` (one of ``train``, ``val``, ``test``)."""


#: The ground-truth masks a synthetic clip carries with ``with_regions`` (bool, (T, H, W) each).
REGION_KEYS = ("action_region", "privacy_region", "person_region")

# Rendered synthetic splits are shared between DataModules in one process (a sweep builds many),
# keyed by everything that determines their pixels.
_RENDER_CACHE: collections.OrderedDict[tuple, dict[str, np.ndarray]] = collections.OrderedDict()
_RENDER_CACHE_SIZE = 6
_RENDER_LOCK = threading.Lock()


class SyntheticClipDataset(ClipDataset):
    """One split of the synthetic source; clips are rendered on first use and kept in memory.

    Item ``i`` is the generator's clip ``first_index + i`` of ``split`` (a later ``first_index``
    gives new clips of the same distribution: the generator is infinite).
    """

    def __init__(self, generator: SyntheticClipGenerator, split: str, size: int, with_regions: bool,
                 first_index: int = 0) -> None:
        self.generator = generator
        self.split = split
        self.size = size
        self.with_regions = with_regions
        self.first_index = first_index
        #: the masks each item carries with ``with_regions`` (a variant generator may add its own)
        self.region_keys = tuple(getattr(generator, "region_keys", REGION_KEYS))
        labels = [generator.labels(split, first_index + i) for i in range(size)]
        self._actions = np.array([lab.action for lab in labels], dtype=np.int64)
        self._privacy = np.stack([lab.privacy for lab in labels]).astype(np.float32)
        key = (
            generator.num_frames, generator.height, generator.width, generator.num_actions,
            generator.correlation, generator.attribute_rate, generator.noise_std, generator.seed,
            generator.preset.name, split, size, with_regions, first_index,
        )
        with _RENDER_LOCK:
            store = _RENDER_CACHE.pop(key, None)
            if store is None:
                T, H, W = generator.num_frames, generator.height, generator.width
                store = {"video": np.zeros((size, 3, T, H, W), np.uint8), "done": np.zeros(size, bool)}
                if with_regions:
                    for key in self.region_keys:
                        store[key] = np.zeros((size, T, H, W), bool)
            _RENDER_CACHE[key] = store
            while len(_RENDER_CACHE) > _RENDER_CACHE_SIZE:
                _RENDER_CACHE.popitem(last=False)
        self._store = store

    def __len__(self) -> int:
        return self.size

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return self._actions, self._privacy

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size} clips")
        store = self._store
        if not store["done"][index]:
            clip = self.generator.render(self.split, self.first_index + index, with_regions=self.with_regions)
            store["video"][index] = clip["video"]
            if self.with_regions:
                for key in self.region_keys:
                    store[key][index] = clip[key]
            store["done"][index] = True
        item = {
            "video": torch.from_numpy(store["video"][index]).float().div_(255.0),
            "action": torch.tensor(self._actions[index]),
            "privacy": torch.from_numpy(self._privacy[index].copy()),
            "id": f"synthetic/{self.split}/{self.first_index + index:06d}",
        }
        if self.with_regions:
            for key in self.region_keys:
                item[key] = torch.from_numpy(store[key][index].copy())
        return item


class SyntheticSource(VideoSource):
    """The built-in procedural dataset (see :mod:`anonpriv.data.synthetic`); needs no files.

    Args:
        num_frames, height, width: clip size.
        num_actions: number of action classes (2 to 12).
        correlation: how strongly private attributes follow the action (0 = independent).
        attribute_rate: probability of each independent attribute.
        noise_std: per-frame pixel noise.
        num_train, num_val, num_test: clips per split.
        seed: dataset seed; every clip is a pure function of ``(seed, split, index)``.
        with_regions: also return ground-truth ``action_region`` / ``privacy_region`` /
            ``person_region`` masks (bool, (T, H, W) per clip; the blackening baseline reads
            ``person_region``).
        preset: ``clear`` (the default benchmark: large figures, limb-identity actions) or ``hard``
            (the original small figures); see :data:`anonpriv.data.synthetic.PRESETS`.
    """

    supports_fresh_epochs = True

    def __init__(
        self,
        num_frames: int = 16,
        height: int = 64,
        width: int = 64,
        num_actions: int = 8,
        correlation: float = 0.0,
        attribute_rate: float = 0.5,
        noise_std: float = 0.02,
        num_train: int = 1024,
        num_val: int = 256,
        num_test: int = 512,
        seed: int = 0,
        with_regions: bool = False,
        preset: str = "clear",
    ) -> None:
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ValueError(f"{name}={value}: every split needs at least one clip.")
        self.generator = SyntheticClipGenerator(
            num_frames=num_frames, height=height, width=width, num_actions=num_actions,
            correlation=correlation, attribute_rate=attribute_rate, noise_std=noise_std, seed=seed,
            preset=preset,
        )
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.with_regions = with_regions

    @property
    def action_names(self) -> list[str]:
        return self.generator.action_names

    @property
    def privacy_names(self) -> list[str]:
        return self.generator.privacy_names

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        g = self.generator
        return (g.num_frames, g.height, g.width)

    def dataset(self, split: str, epoch: int = 0) -> SyntheticClipDataset:
        """Split ``split``; ``epoch > 0`` gives that many sets further into the infinite generator
        (fresh clips for each training epoch, see ``VideoPrivacyDataModule(fresh_train_clips=True)``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {SPLITS}.")
        size = self.sizes[split]
        return SyntheticClipDataset(self.generator, split, size, self.with_regions, first_index=epoch * size)


class LabelSubset(ClipDataset):
    """Keeps the items whose action is in ``actions`` and the privacy columns in ``attributes``.

    Actions are renumbered ``0..len(actions)-1`` in the order given. This is how the "novel"
    protocol holds actions and attributes out, for any source.
    """

    def __init__(self, base: ClipDataset, action_ids: Sequence[int], attribute_ids: Sequence[int]) -> None:
        self.base = base
        actions, privacy = base.labels()
        remap = np.full(max(int(actions.max(initial=0)), max(action_ids, default=0)) + 1, -1, dtype=np.int64)
        remap[list(action_ids)] = np.arange(len(action_ids))
        self._indices = np.flatnonzero(remap[actions] >= 0)
        self._remap = remap
        self._attribute_ids = np.asarray(attribute_ids, dtype=np.int64)
        self._actions = remap[actions[self._indices]]
        self._privacy = privacy[self._indices][:, self._attribute_ids]

    def __len__(self) -> int:
        return len(self._indices)

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return self._actions, self._privacy

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[int(self._indices[index])])
        item["action"] = torch.tensor(self._remap[int(item["action"])])
        item["privacy"] = item["privacy"][torch.from_numpy(self._attribute_ids)]
        return item
