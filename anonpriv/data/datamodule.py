"""The one LightningDataModule every method trains and is evaluated on."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from jsonargparse import lazy_instance
from torch.utils.data import DataLoader

from anonpriv.data.sources import ClipDataset, LabelSubset, SyntheticSource, VideoSource
from anonpriv.data.synthetic import validate_names


def _worker_init(_: int) -> None:
    # Each DataLoader worker decodes on one thread: PyAV's frame threading can hang in workers and
    # torch's intra-op pool would oversubscribe the cores.
    torch.set_num_threads(1)


class VideoPrivacyDataModule(pl.LightningDataModule):
    """Serves batches ``{"video": (B, C, T, H, W), "action": (B,), "privacy": (B, P), "id": [B]}``.

    Args:
        source: where clips come from; the synthetic dataset by default. Real datasets are other
            :class:`~anonpriv.data.sources.VideoSource` subclasses chosen by ``class_path``.
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (defaults to ``batch_size``).
        num_workers: DataLoader worker processes.
        actions: keep only these action classes (by name, renumbered in this order); all by default.
        attributes: keep only these private attributes (by name); all by default. With ``actions``
            this holds classes out for the "novel" protocol.
        pin_memory: pin host memory for faster transfer to a GPU.
    """

    def __init__(
        self,
        source: VideoSource = lazy_instance(SyntheticSource),
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        actions: list[str] | None = None,
        attributes: list[str] | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1.")
        if num_workers < 0:
            raise ValueError(f"num_workers={num_workers} must be 0 or more.")
        self.source = source
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.action_names = validate_names(actions, source.action_names, "actions")
        self.privacy_names = validate_names(attributes, source.privacy_names, "attributes")
        if len(self.action_names) < 2:
            raise ValueError(f"actions={self.action_names}: a classifier needs at least two actions.")
        if not self.privacy_names:
            raise ValueError("attributes=[] leaves nothing to measure privacy on: keep at least one attribute.")
        self._action_ids = [source.action_names.index(n) for n in self.action_names]
        self._attribute_ids = [source.privacy_names.index(n) for n in self.privacy_names]
        self._subset = actions is not None or attributes is not None
        self._datasets: dict[str, ClipDataset] = {}

    @property
    def num_actions(self) -> int:
        return len(self.action_names)

    @property
    def num_privacy(self) -> int:
        return len(self.privacy_names)

    @property
    def clip_shape(self) -> list[int]:
        """``[T, H, W]`` of every clip served (a list, so it stays a plain hyperparameter)."""
        return list(self.source.clip_shape)

    def split(self, name: str) -> ClipDataset:
        """The (possibly label-filtered) dataset of split ``name``, built once."""
        if name not in self._datasets:
            dataset = self.source.dataset(name)
            if self._subset:
                dataset = LabelSubset(dataset, self._action_ids, self._attribute_ids)
            if len(dataset) == 0:
                raise ValueError(
                    f"the {name} split is empty after keeping actions {self.action_names}: "
                    "check the action names or the split files."
                )
            self._datasets[name] = dataset
        return self._datasets[name]

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for name in needed.get(stage, ("train", "val", "test")):
            self.split(name)

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.split(name),
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=_worker_init if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
