"""Every method by short name, and loading a trained method back from a checkpoint."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from anonpriv.methods.base import AnonymizationMethod

# Short name -> class path. A new method adds one line here and one config in configs/method/.
METHODS: dict[str, str] = {
    "raw": "baselines.RawBaseline",
    "blur": "baselines.BlurBaseline",
    "downsample": "baselines.DownsampleBaseline",
    "bdq": "baselines.BDQBaseline",
    "spact": "baselines.SPActBaseline",
    "token_pruning": "anonpriv.methods.token_pruning.TokenPruningMethod",
}


def method_class(name_or_class_path: str) -> type[AnonymizationMethod]:
    """The class of a registered method (``raw``) or of any ``module.Class`` path."""
    path = METHODS.get(name_or_class_path, name_or_class_path)
    if "." not in path:
        raise ValueError(f"unknown method {name_or_class_path!r}: registered ones are {sorted(METHODS)}.")
    module_name, _, class_name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AnonymizationMethod)):
        raise ValueError(f"{path!r} is not an AnonymizationMethod subclass.")
    return cls


def build_method(name_or_class_path: str, **kwargs) -> AnonymizationMethod:
    """A fresh method, e.g. ``build_method("blur", num_actions=8, num_privacy=5, sigma=2.0)``."""
    return method_class(name_or_class_path)(**kwargs)


def load_method(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> AnonymizationMethod:
    """The trained method stored in a checkpoint written by ``anonpriv fit`` (or any Trainer)."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist: pass the path of a .ckpt from `anonpriv fit`.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    class_path = checkpoint.get("anonpriv_method") or checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise ValueError(f"{str(path)!r} does not say which method it holds: was it written by anonpriv?")
    method = method_class(class_path).load_from_checkpoint(path, map_location=map_location)
    method.eval()
    return method
