"""Checkpoints and configs that name a class by a path the baselines had before they moved under
``anonpriv.baselines`` still load (:mod:`anonpriv.methods.old_names`).

A checkpoint records its class path twice: ``anonpriv_method`` (where the class was defined,
``baselines.raw.RawBaseline``) and LightningCLI's ``_class_path`` among the hyperparameters (the
config's spelling, ``baselines.RawBaseline``). Each old path is written into a tiny checkpoint of a
freshly built method (no training) under either key, and read back by every loader.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from anonpriv.evaluation import resolve_anonymizer
from anonpriv.methods.catalog import CATALOG, find_method, short_name
from anonpriv.methods.old_names import MOVED_CLASS_PATHS, current_class_path
from anonpriv.methods.registry import (
    MethodAnonymizer,
    build_method,
    load_checkpoint_anonymizer,
    load_method,
    method_class,
)

LABELS = {"num_actions": 3, "num_privacy": 2, "clip_shape": [8, 32, 32]}
OPTIONS = {"spact": {"unet_width": 4, "unet_depth": 1}, "blackening": {"detector": "stub_people"}}
OLD_METHOD_PATHS = sorted(old for old, new in MOVED_CLASS_PATHS.items() if find_method(new) is not None)


def _import(path: str):
    module_name, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def write_old_checkpoint(old_path: str, path, key: str) -> torch.nn.Module:
    """A checkpoint of the method ``old_path`` names, which records ``old_path`` under ``key``
    (``anonpriv_method``, or LightningCLI's ``_class_path`` alone); returns the method written."""
    spec = find_method(old_path)
    torch.manual_seed(0)
    method = build_method(spec.name, **LABELS, **OPTIONS.get(spec.name, {}))
    with torch.no_grad():
        for parameter in method.parameters():  # weights unlike a fresh build's, so loading them shows
            parameter.add_(0.01)
    checkpoint = {"state_dict": method.state_dict(), "hyper_parameters": dict(method.hparams)}
    if key == "anonpriv_method":
        checkpoint["anonpriv_method"] = old_path
    else:
        checkpoint["hyper_parameters"]["_class_path"] = old_path
    torch.save(checkpoint, path)
    return method.eval()


def test_every_old_path_is_a_baseline_path_and_imports_now():
    for old, new in MOVED_CLASS_PATHS.items():
        assert old.startswith("baselines.") and new.startswith("anonpriv.baselines.")
        assert current_class_path(old) == new
        assert _import(new) is not None
    assert current_class_path("anonpriv.baselines.raw.RawBaseline") == "anonpriv.baselines.raw.RawBaseline"


def test_every_catalog_baseline_has_its_old_paths():
    for spec in CATALOG.values():
        if spec.method.startswith("anonpriv.baselines."):
            assert any(find_method(old) is spec for old in OLD_METHOD_PATHS), spec.name


@pytest.mark.parametrize("old_path", OLD_METHOD_PATHS)
def test_an_old_class_path_names_its_method(old_path):
    spec = find_method(old_path)
    assert method_class(old_path) is method_class(spec.name)
    assert short_name(old_path) == spec.name  # a sweep's row and a run's folder are named as before


@pytest.mark.parametrize("key", ["anonpriv_method", "_class_path"])
@pytest.mark.parametrize("old_path", OLD_METHOD_PATHS)
def test_a_checkpoint_with_an_old_class_path_loads(old_path, key, tmp_path, stub_person_detector):
    path = tmp_path / "old.ckpt"
    written = write_old_checkpoint(old_path, path, key)
    video = torch.rand(2, 3, *LABELS["clip_shape"], generator=torch.Generator().manual_seed(1))

    method = load_method(path)
    assert type(method) is type(written)
    assert all(torch.equal(method.state_dict()[k], v) for k, v in written.state_dict().items())

    anonymizer = load_checkpoint_anonymizer(path)  # torch alone
    assert isinstance(anonymizer, MethodAnonymizer) and anonymizer.method_name == type(written).__name__
    with torch.no_grad():
        torch.testing.assert_close(anonymizer.anonymize(video), written.anonymize(video), rtol=0, atol=0)

    if key == "anonpriv_method":  # the evaluation protocol loads the anonymizer it freezes the same way
        assert type(resolve_anonymizer(str(path), None, **LABELS)) is type(written)
