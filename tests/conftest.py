"""Shared fixtures: tiny synthetic data so the suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture
def tiny_source():
    from anonpriv.data import SyntheticSource

    return SyntheticSource(num_frames=8, height=32, width=32, num_train=16, num_val=8, num_test=8, seed=1)


@pytest.fixture
def tiny_datamodule(tiny_source):
    from anonpriv.data import VideoPrivacyDataModule

    return VideoPrivacyDataModule(tiny_source, batch_size=4)


@pytest.fixture
def tiny_batch(tiny_datamodule):
    tiny_datamodule.setup("fit")
    return next(iter(tiny_datamodule.train_dataloader()))
