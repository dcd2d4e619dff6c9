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


@pytest.fixture
def stub_person_detector(monkeypatch):
    """A person detector registered for blackening as ``detector: stub_people`` (no weights, no download):
    in every frame a person box over the centre half (score 0.9) and a faint one in the top-left corner
    (score 0.1). Returns the list of frame counts it was called with."""
    import torch

    from anonpriv.baselines.blackening.anonymizer import PERSON_DETECTORS

    calls: list[int] = []

    def detect(frames):
        calls.append(len(frames))
        _, _, h, w = frames.shape
        boxes = torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4, 0.9], [0.0, 0.0, w / 4, h / 4, 0.1]])
        return [boxes.clone() for _ in range(len(frames))]

    monkeypatch.setitem(PERSON_DETECTORS, "stub_people", lambda weights_file: detect)
    return calls


# Tests of things that need the optional extra `faces` (the face detector: `pip install 'anonpriv[faces]'`,
# which `make install` installs) are skipped where it is missing: parametrized cases whose parameter names
# the face_blur method or its config, and tests marked `needs_faces`.
_FACE_PARAMETERS = ("face_blur",)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_faces: the test needs the optional extra `faces` (the face detector)")


def pytest_collection_modifyitems(config, items):
    from anonpriv.faces import INSTALL_HINT, faces_available

    if faces_available():
        return
    skip = pytest.mark.skip(reason=f"needs the optional extra `faces`: {INSTALL_HINT}")
    for item in items:
        values = getattr(getattr(item, "callspec", None), "params", {}).values()
        if item.get_closest_marker("needs_faces") or any(
                any(name in str(value) for name in _FACE_PARAMETERS) for value in values):
            item.add_marker(skip)
