"""The method catalog (:mod:`anonpriv.methods.catalog`) is the one list of methods.

Every entry's method and anonymizer import and build; every config under configs/method/ names a
catalog method, and every catalog method has its config; the registry's tables are the catalog's
columns; and the catalog itself imports nothing heavy (the sweep and ``--help`` read it).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from anonpriv.methods import catalog, registry
from anonpriv.methods.base import AnonymizationMethod
from anonpriv.methods.catalog import CATALOG, COMMON_OPTIONS, find_method, name_from_class, short_name

METHOD_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "method"

# Small shapes; blackening's stub detector (tests/conftest.py) needs no weights.
OPTIONS = {"spact": {"unet_width": 4, "unet_depth": 1}, "blackening": {"detector": "stub_people"},
           "token_pruning": {"embed_dim": 32, "depth": 2, "num_heads": 2, "prune_blocks": [2], "pretrained_file": None}}


def _import(path: str):
    module_name, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def test_the_catalog_imports_nothing_heavy(tmp_path):
    from test_import_cost import imports_of

    assert imports_of("import anonpriv.methods.catalog", tmp_path)["modules"] == []


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_entry_imports_and_builds(name, stub_person_detector):
    spec = CATALOG[name]
    assert spec.name == name
    cls = _import(spec.method)
    assert isinstance(cls, type) and issubclass(cls, AnonymizationMethod)
    assert f"{cls.__module__}.{cls.__qualname__}" == spec.checkpoint_class_path  # what its checkpoints record
    assert registry.method_class(name) is cls
    options = {"num_actions": 3, "num_privacy": 2, "clip_shape": [8, 32, 32], **OPTIONS.get(name, {})}
    assert isinstance(registry.build_method(name, **options), cls)
    builder = _import(spec.anonymizer)
    assert callable(builder)
    anonymizer = registry.build_anonymizer(name, **options)
    assert isinstance(anonymizer, registry.MethodAnonymizer) and anonymizer.method_name == spec.class_name
    assert not set(spec.training_options) & COMMON_OPTIONS


@pytest.mark.parametrize("config", sorted(METHOD_CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_method_config_names_a_catalog_method(config):
    class_path = yaml.safe_load(config.read_text())["class_path"]
    spec = find_method(class_path)
    assert spec is not None, f"{config.name}: {class_path} is in no MethodSpec of anonpriv/methods/catalog.py"
    assert class_path == spec.method  # one spelling: the catalog's
    assert config.stem == spec.name or config.stem.startswith(f"{spec.name}_")  # downsample_4x, token_pruning_paper


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_catalog_method_has_its_config(name):
    config = METHOD_CONFIGS / f"{name}.yaml"
    assert config.is_file(), f"add {config.relative_to(METHOD_CONFIGS.parents[1])} for the catalog's {name!r}"
    assert yaml.safe_load(config.read_text())["class_path"] == CATALOG[name].method


def test_the_catalog_is_the_only_method_table():
    import anonpriv.methods

    for table in ("METHODS", "ANONYMIZERS", "AnonymizerSpec"):  # the hand-synced tables it replaced
        assert not hasattr(registry, table) and table not in dir(anonpriv.methods)
    assert registry.COMMON_OPTIONS is COMMON_OPTIONS
    assert anonpriv.methods.CATALOG is CATALOG


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_a_method_is_found_by_name_and_by_each_spelling_of_its_class(name):
    spec = CATALOG[name]
    for key in (name, spec.method, spec.checkpoint_class_path):
        assert find_method(key) is spec
        assert short_name(key) == name
    assert name_from_class(spec.method) == name  # a run's folder is named alike with or without the catalog


def test_classes_outside_the_catalog_are_named_from_the_class():
    assert find_method("my_project.methods.MyNewMethod") is None
    assert short_name("my_project.methods.MyNewMethod") == "my_new"
    assert find_method("anonpriv.baselines.raw.anonymizer.RawBaseline") is None  # not where the class is
    with pytest.raises(ValueError, match="registered ones are"):
        registry.method_class("no_such_method")
    assert catalog.MethodSpec("x", "pkg.sub.Cls", "torch.nn.Identity").checkpoint_class_path == "pkg.sub.method.Cls"
