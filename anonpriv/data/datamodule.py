"""The one LightningDataModule every method trains and is evaluated on."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.utilities import rank_zero_warn
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
        drop_last: drop the incomplete last *training* batch of each epoch (default ``True``).
            Some methods cannot train on a batch of one clip (SPAct's NT-Xent loss needs two,
            BatchNorm on one value per channel fails), and a training set one clip more than a
            multiple of ``batch_size`` (e.g. 9,537 = 16 x 596 + 1, all of UCF101 split 1's training list) would end every epoch
            with one. At most ``batch_size - 1`` clips per epoch are left out, different ones each
            epoch when shuffled. Validation, test and predict loaders never drop anything. If the
            training split has fewer clips than ``batch_size``, nothing is dropped (one smaller
            batch per epoch, with a warning) rather than training on no batch at all.
        fresh_train_clips: draw a new training set for every epoch from a generated source (the
            synthetic generator is infinite), for pretraining without overfitting a fixed set.
            Needs ``trainer.reload_dataloaders_every_n_epochs: 1``; real datasets refuse it.
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
        drop_last: bool = True,
        fresh_train_clips: bool = False,
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
        self.drop_last = drop_last
        if fresh_train_clips and not source.supports_fresh_epochs:
            raise ValueError(
                f"fresh_train_clips=True needs a generated source; {type(source).__name__} has a fixed set of "
                "videos: set fresh_train_clips: false."
            )
        self.fresh_train_clips = fresh_train_clips
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
            self._datasets[name] = self._build_split(name)
        return self._datasets[name]

    def _build_split(self, name: str, **source_args) -> ClipDataset:
        """``source.dataset(name, **source_args)``, label-filtered, refused when that leaves it empty."""
        dataset = self.source.dataset(name, **source_args)
        if self._subset:
            dataset = LabelSubset(dataset, self._action_ids, self._attribute_ids)
        if len(dataset) == 0:
            raise ValueError(
                f"the {name} split is empty after keeping actions {self.action_names}: "
                "check the action names or the split files."
            )
        return dataset

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for name in needed.get(stage, ("train", "val", "test")):
            self.split(name)

    def _drops_last_training_batch(self) -> bool:
        """``drop_last`` unless it would leave the training split without a single batch."""
        if not self.drop_last:
            return False
        size = len(self.split("train"))
        if size < self.batch_size:
            rank_zero_warn(
                f"the training split has {size} clips, fewer than batch_size={self.batch_size}: drop_last is "
                f"not applied (it would leave no batch), so each epoch is one batch of {size}. "
                "Lower batch_size to silence this."
            )
            return False
        return True

    def _loader(self, name: str, train: bool) -> DataLoader:
        return DataLoader(
            self.split(name),
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and self._drops_last_training_batch(),  # evaluation never drops a clip
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=_worker_init if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        if self.fresh_train_clips:
            self._datasets["train"] = self._fresh_training_set()
        return self._loader("train", train=True)

    def _fresh_training_set(self) -> ClipDataset:
        trainer = self.trainer
        if trainer is None:
            return self.split("train")
        if trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValueError(
                "fresh_train_clips=True draws new clips when the training loader is rebuilt: set "
                "trainer.reload_dataloaders_every_n_epochs: 1 (or fresh_train_clips: false)."
            )
        return self._build_split("train", epoch=trainer.current_epoch)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
