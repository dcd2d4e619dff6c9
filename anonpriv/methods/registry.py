"""Every method by short name, and loading a trained method back from a checkpoint.

Importing this module costs no more than torch: the method classes (LightningModules) and
Lightning itself are imported when a method is built or loaded.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from anonpriv.methods.base import AnonymizationMethod

# Short name -> class path. A new method adds one line here and one config in configs/method/.
METHODS: dict[str, str] = {
    "raw": "baselines.RawBaseline",
    "blur": "baselines.BlurBaseline",
    "downsample": "baselines.DownsampleBaseline",
    "face_blur": "baselines.face_blur.FaceBlurBaseline",
    "bdq": "baselines.BDQBaseline",
    "spact": "baselines.SPActBaseline",
    "token_pruning": "anonpriv.methods.token_pruning.TokenPruningMethod",
}


def method_class(name_or_class_path: str) -> type[AnonymizationMethod]:
    """The class of a registered method (``raw``) or of any ``module.Class`` path."""
    path = METHODS.get(name_or_class_path, name_or_class_path)
    if "." not in path:
        raise ValueError(f"unknown method {name_or_class_path!r}: registered ones are {sorted(METHODS)}.")
    from anonpriv.methods.base import AnonymizationMethod

    module_name, _, class_name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AnonymizationMethod)):
        raise ValueError(f"{path!r} is not an AnonymizationMethod subclass.")
    return cls


@contextlib.contextmanager
def _own_hyperparameters() -> Iterator[None]:
    """Let a method record its own init arguments when it is built inside another module's
    construction: LightningCLI hands the module *it* builds (e.g. the evaluation protocol, which
    builds or loads a method) its config through a context variable, which ``save_hyperparameters``
    of any nested LightningModule would otherwise take as its own."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    token = _given_hyperparameters.set(None)
    try:
        yield
    finally:
        _given_hyperparameters.reset(token)


def build_method(name_or_class_path: str, **kwargs) -> AnonymizationMethod:
    """A fresh method, e.g. ``build_method("blur", num_actions=8, num_privacy=5, sigma=2.0)``."""
    cls = method_class(name_or_class_path)
    with _own_hyperparameters():
        return cls(**kwargs)


def load_method(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> AnonymizationMethod:
    """The trained method stored in a checkpoint written by ``anonpriv fit`` (or any Trainer).

    The method is rebuilt from the plain hyperparameters saved in the checkpoint and its weights
    loaded; nothing else is read (a ``pretrained_file`` it was once initialised from is not needed).
    This deliberately avoids Lightning's instantiator path, which inside a running LightningCLI
    would hand the method the CLI's own model config (e.g. while the evaluation protocol loads it).
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist: pass the path of a .ckpt from `anonpriv fit`.")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = checkpoint.get("anonpriv_method") or hparams.get("_class_path")
    if not class_path or "state_dict" not in checkpoint:
        raise ValueError(f"{str(path)!r} does not say which method it holds: was it written by anonpriv?")
    kwargs = {k: v for k, v in hparams.items() if not k.startswith("_")}
    # The checkpoint's weights replace the anonymizer's initialisation: its file is not read, its 2D
    # weights are not downloaded again (the scale they brought is in input_mean / input_std).
    if "pretrained_file" in kwargs:
        kwargs["pretrained_file"] = None
    if kwargs.get("pretrained"):
        kwargs["pretrained"] = False
    with _own_hyperparameters():
        method = method_class(class_path)(**kwargs)
    method.load_state_dict(checkpoint["state_dict"])
    method.eval()
    return method
