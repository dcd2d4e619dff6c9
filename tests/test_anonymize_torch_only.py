"""The anonymizer alone, with torch alone (``build_anonymizer``, ``load_checkpoint_anonymizer``):
the same outputs as the whole method, fresh or trained, for every registered method.

What it imports is checked in fresh processes by ``tests/test_import_cost.py``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from anonpriv.anonymize.cli import load_anonymizer
from anonpriv.anonymize.engine import SlidingClipAnonymizer
from anonpriv.anonymize.errors import AnonymizeError
from anonpriv.baselines.blur import BlurBaseline
from anonpriv.faces import faces_available
from anonpriv.methods.base import AnonymizationMethod
from anonpriv.methods.catalog import CATALOG, COMMON_OPTIONS
from anonpriv.methods.registry import (
    MethodAnonymizer,
    build_anonymizer,
    build_method,
    builder_options,
    load_checkpoint_anonymizer,
    load_method,
    method_class,
)

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")

NUM_ACTIONS, NUM_PRIVACY, CLIP_SHAPE, BATCH = 4, 5, [8, 32, 32], 4

# Options off their defaults (anonymizer options and, to show they are accepted, training-only ones).
OPTIONS = {
    "raw": {},
    "blur": {"kernel_size": 5, "sigma": 2.0},
    "downsample": {"factor": 4.0, "up_mode": "bilinear"},
    # the stub person detector (tests/conftest.py): these clips carry no person mask
    "blackening": {"detector": "stub_people", "margin": 0.1, "score_threshold": 0.3},
    "face_blur": {"threshold": 0.3, "mode": "black"},
    "bdq": {"blur_sigma": 2.0, "num_thresholds": 7, "staircase_slope": 3.0},
    "spact": {"unet_width": 4, "unet_depth": 1, "ssl_weight": 0.5, "reconstruction_epochs": 0},
    "token_pruning": {"embed_dim": 32, "depth": 2, "num_heads": 2, "prune_blocks": [2], "keep_ratio": 0.3,
                      "lambda_priv": 2.0, "input_mean": [0.4, 0.5, 0.6], "stage_supervision": 0.5,
                      "attention_map_clips": 0},
}
TRAINABLE = ["raw", "blur", "downsample", "blackening", "bdq", "spact", "token_pruning"]


@pytest.fixture(autouse=True)
def _person_detector(stub_person_detector):
    """blackening's ``detector: stub_people`` (no weights to download) registered for every test here."""


def method_options(name: str) -> dict:
    return {"num_actions": NUM_ACTIONS, "num_privacy": NUM_PRIVACY, "clip_shape": list(CLIP_SHAPE), **OPTIONS[name]}


def needs_faces(name: str) -> None:
    if name == "face_blur" and not faces_available():
        pytest.skip("face_blur needs the optional extra `faces`")


def random_batch(seed: int = 123) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "video": torch.rand(BATCH, 3, *CLIP_SHAPE, generator=generator),
        "action": torch.arange(BATCH) % NUM_ACTIONS,
        "privacy": torch.randint(0, 2, (BATCH, NUM_PRIVACY), generator=generator),
        "id": [f"clip_{i}" for i in range(BATCH)],
    }


def write_checkpoint(name: str, path: Path, method_cls: type | None = None) -> AnonymizationMethod:
    """Build method ``name`` (or ``method_cls``) with :data:`OPTIONS`, train it for one step of every
    phase on a random batch and save a Trainer checkpoint at ``path``; returns the trained method."""
    torch.manual_seed(0)
    options = method_options(name)
    method = method_cls(**options) if method_cls is not None else build_method(name, **options)
    batch = random_batch()
    items = [{key: value[i] for key, value in batch.items()} for i in range(BATCH)]
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0)
    trainer.fit(method, train_dataloaders=DataLoader(items, batch_size=BATCH, shuffle=False))
    trainer.save_checkpoint(path)
    return method.eval()


@torch.no_grad()
def assert_same_outputs(expected, got, video: torch.Tensor) -> None:
    """``anonymizer_outputs`` (every tensor in it) and ``anonymize`` agree exactly."""
    want, have = expected.anonymizer_outputs(video), got.anonymizer_outputs(video)
    assert set(have) == set(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(have[key], value, rtol=0, atol=0, msg=key)
    torch.testing.assert_close(got.anonymize(video), expected.anonymize(video), rtol=0, atol=0)


# -- the table ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_catalog_method_names_a_callable_anonymizer_builder(name):
    module_name, _, attribute = CATALOG[name].anonymizer.rpartition(".")
    builder = getattr(__import__(module_name, fromlist=[attribute]), attribute, None)
    assert callable(builder), (f"{name}: its MethodSpec's anonymizer {CATALOG[name].anonymizer!r} (anonpriv/methods/"
                               "catalog.py) must name the torch-only builder `anonpriv anonymize` uses")


def test_the_common_options_are_those_of_the_base_class():
    base = set(inspect.signature(AnonymizationMethod.__init__).parameters) - {"self", "anonymizer"}
    assert COMMON_OPTIONS == base


def _own_options(cls: type) -> set[str]:
    """The init options of ``cls`` and of its parents up to the base class (``**kwargs`` aside)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    options = set()
    for klass in cls.__mro__:
        if klass is AnonymizationMethod:
            break
        if "__init__" in vars(klass):
            options |= {p.name for p in inspect.signature(klass.__init__).parameters.values() if p.kind in named}
    return options - {"self"}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_entry_names_the_method_class_and_splits_its_options(name):
    spec = CATALOG[name]
    cls = method_class(name)
    assert f"{cls.__module__}.{cls.__qualname__}" == spec.checkpoint_class_path  # what its checkpoints say
    module_name, _, attribute = spec.anonymizer.rpartition(".")
    builder = getattr(__import__(module_name, fromlist=[attribute]), attribute)
    takes = set(builder_options(builder))
    training_only = set(spec.training_options)
    assert not takes & training_only
    # Every option of the method is either the anonymizer's, training-only, or a common one, and
    # the builder takes nothing the method does not.
    assert _own_options(cls) | COMMON_OPTIONS == takes | training_only | COMMON_OPTIONS


# -- fresh anonymizers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CATALOG))
def test_a_fresh_anonymizer_equals_the_fresh_method(name):
    needs_faces(name)
    torch.manual_seed(7)
    method = build_method(name, **method_options(name)).eval()
    torch.manual_seed(7)  # the anonymizer is the first thing a method builds: same random state
    anonymizer = build_anonymizer(name, **method_options(name)).eval()
    assert isinstance(anonymizer, MethodAnonymizer)
    assert anonymizer.method_name == type(method).__name__
    assert anonymizer.clip_shape == method.clip_shape
    assert set(anonymizer.state_dict()) == {k for k in method.state_dict() if k.startswith("anonymizer.")}
    assert_same_outputs(method, anonymizer, random_batch()["video"])


def test_without_a_clip_shape_the_anonymizer_has_the_method_default():
    method = build_method("token_pruning", **OPTIONS["token_pruning"])
    assert build_anonymizer("token_pruning", **OPTIONS["token_pruning"]).clip_shape == method.clip_shape == [16, 64, 64]
    assert build_anonymizer("blur").clip_shape is None and build_method("blur").clip_shape is None


def test_unknown_options_and_bad_values_are_refused_as_the_method_refuses_them():
    with pytest.raises(TypeError, match="'sigmaa'.*kernel_size, relative_sigma, sigma"):
        build_anonymizer("blur", sigmaa=2.0)
    with pytest.raises(AnonymizeError, match="--method blur: .*'sigmaa'"):
        load_anonymizer("blur", None, {"sigmaa": 2.0})
    for name, options in [("blur", {"kernel_size": 4}), ("downsample", {"factor": 0.5}),
                          ("bdq", {"clip_shape": [1, 32, 32]}), ("raw", {"clip_shape": [8, 32]}),
                          ("token_pruning", {"keep_ratio": 0.0})]:
        with pytest.raises(ValueError) as method_error:
            build_method(name, **options)
        with pytest.raises(ValueError) as anonymizer_error:
            build_anonymizer(name, **options)
        assert str(anonymizer_error.value) == str(method_error.value)


# -- trained checkpoints --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRAINABLE)
def test_a_checkpoint_anonymizer_equals_the_trained_method(name, tmp_path):
    path = tmp_path / f"{name}.ckpt"
    trained = write_checkpoint(name, path)
    anonymizer = load_checkpoint_anonymizer(path)
    assert isinstance(anonymizer, MethodAnonymizer) and not anonymizer.training
    assert anonymizer.method_name == type(trained).__name__ and anonymizer.clip_shape == trained.clip_shape
    video = random_batch(seed=5)["video"]
    assert_same_outputs(trained, anonymizer, video)
    assert_same_outputs(load_method(path), anonymizer, video)
    if name == "bdq":  # the training step moved the learnable sigma: the checkpoint's is the one used
        assert anonymizer.anonymizer.blur.sigma.item() == trained.anonymizer.blur.sigma.item() != 2.0
    # Through `anonpriv anonymize`'s window runner: the same uint8 frames (and masks).
    windows = np.random.default_rng(0).integers(0, 256, (2, CLIP_SHAPE[0], 40, 48, 3), dtype=np.uint8)
    expected = SlidingClipAnonymizer(trained).run_batch(windows)
    got = SlidingClipAnonymizer(load_anonymizer(None, str(path))).run_batch(windows)
    for want, have in zip(expected, got):
        assert (want is None and have is None) or np.array_equal(want, have)


class SubclassedBlur(BlurBaseline):
    """Not in the table: a checkpoint of it needs the method's class."""


def test_a_checkpoint_of_an_unregistered_class_loads_the_whole_method(tmp_path):
    path = tmp_path / "sub.ckpt"
    trained = write_checkpoint("blur", path, method_cls=SubclassedBlur)
    loaded = load_checkpoint_anonymizer(path)
    assert type(loaded) is SubclassedBlur and not loaded.training
    assert_same_outputs(trained, loaded, random_batch()["video"])
    assert type(build_anonymizer(f"{__name__}.SubclassedBlur")) is SubclassedBlur
