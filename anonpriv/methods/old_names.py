"""Names that checkpoints and configs written earlier may use, mapped to the names now. Torch-free.

**Moved class paths.** A checkpoint records its method's class path (``anonpriv_method``: where the
class is defined, and LightningCLI's ``_class_path``: the config's spelling), and configs name classes
by path too. The baselines were once a top-level package ``baselines`` and are now
``anonpriv.baselines``, one folder per baseline; every path the old layout had for a method, or for an
anonymizer the method table named, is in :data:`MOVED_CLASS_PATHS`. :func:`current_class_path` is
applied wherever a stored class path is resolved (:mod:`anonpriv.methods.catalog`,
:mod:`anonpriv.methods.registry`).

**Renamed options and submodules.** The method's own privacy model (docs/glossary.md) was once called
``budget``: a checkpoint of that time stores its weights under ``budget.*`` and its learning rate as
the option ``budget_lr``. Such a checkpoint loads: :func:`current_options` is applied to the options
read from a checkpoint (:func:`anonpriv.methods.registry.read_checkpoint`), and every method reads a
state dict through :func:`current_state_dict_keys` (a load pre-hook of
:class:`~anonpriv.methods.AnonymizationMethod`), which also covers a method nested in another (the one
the evaluation protocol freezes).

A config that names an old path or option cannot be rescued this way (jsonargparse imports class paths
and checks keys itself); the CLI and the sweep refuse it in one line that gives the name now
(:func:`anonpriv.cli.errors.moved_class_path_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

#: Old class path -> the same class's path now (the catalog's spelling for a method).
MOVED_CLASS_PATHS: dict[str, str] = {
    # the methods, by the old package's exports and by their defining modules
    "baselines.RawBaseline": "anonpriv.baselines.raw.RawBaseline",
    "baselines.raw.RawBaseline": "anonpriv.baselines.raw.RawBaseline",
    "baselines.BlurBaseline": "anonpriv.baselines.blur.BlurBaseline",
    "baselines.blur.BlurBaseline": "anonpriv.baselines.blur.BlurBaseline",
    "baselines.DownsampleBaseline": "anonpriv.baselines.blur.DownsampleBaseline",
    "baselines.blur.DownsampleBaseline": "anonpriv.baselines.blur.DownsampleBaseline",
    "baselines.BlackeningBaseline": "anonpriv.baselines.blackening.BlackeningBaseline",
    "baselines.blackening.BlackeningBaseline": "anonpriv.baselines.blackening.BlackeningBaseline",
    "baselines.face_blur.FaceBlurBaseline": "anonpriv.baselines.face_blur.FaceBlurBaseline",
    "baselines.BDQBaseline": "anonpriv.baselines.bdq.BDQBaseline",
    "baselines.bdq.BDQBaseline": "anonpriv.baselines.bdq.BDQBaseline",
    "baselines.SPActBaseline": "anonpriv.baselines.spact.SPActBaseline",
    "baselines.spact.SPActBaseline": "anonpriv.baselines.spact.SPActBaseline",
    # the anonymizers, by the torch-only modules that built them
    "baselines.blur_anonymizer.GaussianBlur": "anonpriv.baselines.blur.anonymizer.GaussianBlur",
    "baselines.blur_anonymizer.DownUpSample": "anonpriv.baselines.blur.anonymizer.DownUpSample",
    "baselines.blackening_anonymizer.Blackening": "anonpriv.baselines.blackening.anonymizer.Blackening",
    "baselines.face_blur_anonymizer.FaceBlur": "anonpriv.baselines.face_blur.anonymizer.FaceBlur",
    "baselines.bdq_anonymizer.bdq_anonymizer": "anonpriv.baselines.bdq.anonymizer.bdq_anonymizer",
    "baselines.bdq_anonymizer.BDQEncoder": "anonpriv.baselines.bdq.anonymizer.BDQEncoder",
    "baselines.spact_anonymizer.spact_anonymizer": "anonpriv.baselines.spact.anonymizer.spact_anonymizer",
    "baselines.spact_anonymizer.FrameUNet": "anonpriv.baselines.spact.anonymizer.FrameUNet",
}


def current_class_path(class_path: str) -> str:
    """``class_path`` as it is spelled now: moved ones mapped (:data:`MOVED_CLASS_PATHS`), any other as given."""
    return MOVED_CLASS_PATHS.get(class_path, class_path)


#: Old option name -> its name now.
RENAMED_OPTIONS: dict[str, str] = {"budget_lr": "privacy_lr"}

#: Old submodule (attribute) name of a method -> its name now.
RENAMED_SUBMODULES: dict[str, str] = {"budget": "privacy_model"}


def current_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every renamed option under its name now, in the same order.

    Raises ``ValueError`` if an option is given under both its old and its new name.
    """
    both = sorted(old for old, new in RENAMED_OPTIONS.items() if old in options and new in options)
    if both:
        raise ValueError(f"options {both} and {[RENAMED_OPTIONS[o] for o in both]} name the same option: keep one.")
    return {RENAMED_OPTIONS.get(key, key): value for key, value in options.items()}


def current_state_dict_keys(state_dict: MutableMapping[str, Any], prefix: str = "",
                            renamed: Mapping[str, str] = RENAMED_SUBMODULES) -> None:
    """Rename, in place, the entries of ``state_dict`` that lie under ``prefix`` + an old submodule
    name (``budget.``) to lie under the name now (``privacy_model.``), keeping the entries' order.

    ``prefix`` is where the method sits in the state dict (``""`` for the module loaded, or e.g.
    ``"anonymizer.method."`` for a method nested in the evaluation protocol). A state dict without
    old names is left as it is.
    """
    def current(key: str) -> str:
        if not key.startswith(prefix):
            return key
        head, dot, rest = key[len(prefix):].partition(".")
        return f"{prefix}{renamed[head]}{dot}{rest}" if dot and head in renamed else key

    keys = list(state_dict)
    new_keys = [current(key) for key in keys]
    if new_keys == keys:
        return
    clash = sorted(new for key, new in zip(keys, new_keys) if new != key and new in state_dict)
    if clash:
        raise ValueError(f"the state dict holds {clash[0]!r} under its old name and its name now: keep one.")
    entries = [(new, state_dict[key]) for key, new in zip(keys, new_keys)]
    state_dict.clear()
    state_dict.update(entries)
