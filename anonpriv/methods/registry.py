"""Building a method by short name, and loading a trained method back from a checkpoint.

The methods and their names are those of the catalog (:mod:`anonpriv.methods.catalog`). Importing
this module costs no more than torch: the method classes (LightningModules) and Lightning itself are
imported when a method is built or loaded. A class path read from a checkpoint may be one the
baselines had before they moved under ``anonpriv.baselines`` (:mod:`anonpriv.methods.old_names`).

Anonymizing needs a method's anonymizer ``f_A`` alone, and every catalog entry names a torch-only
builder of it: :func:`build_anonymizer` builds it by name from the method's own options, and
:func:`load_checkpoint_anonymizer` rebuilds a trained checkpoint's from the checkpoint's
hyperparameters and its ``anonymizer.*`` weights, neither importing Lightning nor the method's
class. Both give a :class:`MethodAnonymizer`, whose outputs are those of the method's
``anonymizer_outputs`` in eval mode. ``anonpriv anonymize`` uses them.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from anonpriv.methods.catalog import CATALOG, COMMON_OPTIONS, MethodSpec, find_method
from anonpriv.methods.old_names import current_class_path, current_options

if TYPE_CHECKING:
    from anonpriv.methods.base import AnonymizationMethod

def method_class(name_or_class_path: str) -> type[AnonymizationMethod]:
    """The class of a catalog method (``raw``) or of any ``module.Class`` path (a moved one as well)."""
    spec = CATALOG.get(name_or_class_path)
    path = spec.method if spec is not None else current_class_path(name_or_class_path)
    if "." not in path:
        raise ValueError(f"unknown method {name_or_class_path!r}: registered ones are {sorted(CATALOG)}.")
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


def read_checkpoint(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> tuple[str, dict, dict]:
    """``(class path, init arguments, state dict)`` of the method stored in a checkpoint written by
    ``anonpriv fit`` (or any Trainer), read with torch alone.

    The init arguments are the plain hyperparameters saved in the checkpoint, under their names now
    (:func:`~anonpriv.methods.old_names.current_options`), with any weights source they name dropped:
    the checkpoint's weights replace the anonymizer's initialisation, so a ``pretrained_file`` it was
    once initialised from is not read and 2D weights are not downloaded again (the scale they
    brought is in ``input_mean`` / ``input_std``).
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist: pass the path of a .ckpt from `anonpriv fit`.")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = checkpoint.get("anonpriv_method") or hparams.get("_class_path")
    if not class_path or "state_dict" not in checkpoint:
        raise ValueError(f"{str(path)!r} does not say which method it holds: was it written by anonpriv?")
    kwargs = current_options({k: v for k, v in hparams.items() if not k.startswith("_")})
    if "pretrained_file" in kwargs:
        kwargs["pretrained_file"] = None
    if kwargs.get("pretrained"):
        kwargs["pretrained"] = False
    return class_path, kwargs, checkpoint["state_dict"]


def load_method(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> AnonymizationMethod:
    """The trained method stored in a checkpoint written by ``anonpriv fit`` (or any Trainer).

    The method is rebuilt from the plain hyperparameters saved in the checkpoint and its weights
    loaded; nothing else is read (a ``pretrained_file`` it was once initialised from is not needed:
    :func:`read_checkpoint`). This deliberately avoids Lightning's instantiator path, which inside a
    running LightningCLI would hand the method the CLI's own model config (e.g. while the evaluation
    protocol loads it).
    """
    return _rebuild_method(*read_checkpoint(checkpoint_path, map_location))


def _rebuild_method(class_path: str, kwargs: dict, state_dict: dict) -> AnonymizationMethod:
    with _own_hyperparameters():
        method = method_class(class_path)(**kwargs)
    method.load_state_dict(state_dict)
    method.eval()
    return method


# -- the anonymizer alone, with torch alone -------------------------------------------------------------
class MethodAnonymizer(nn.Module):
    """A method's anonymizer ``f_A`` alone, with what ``anonpriv anonymize`` reads of a method.

    ``anonymizer_outputs(video)`` is the method's in eval mode: ``{"video": f_A(video)}``, or the
    dict ``f_A`` returns (token pruning's ``mask``, ``tubelet_mask``, ...). Its state dict is the
    method's ``anonymizer.*`` entries. For inference: training is the method's (a token-pruning
    anonymizer here always keeps its target ``keep_ratio``, as the method does outside training).

    Args:
        anonymizer: the ``f_A`` module.
        method_name: the method's class name (what messages call it).
        clip_shape: ``[T, H, W]`` the method works on (``None``: any).
    """

    def __init__(self, anonymizer: nn.Module, method_name: str, clip_shape: list[int] | None = None) -> None:
        super().__init__()
        self.anonymizer = anonymizer
        self.method_name = method_name
        self.clip_shape = list(clip_shape) if clip_shape is not None else None

    def anonymizer_outputs(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.anonymizer(video)
        return out if isinstance(out, Mapping) else {"video": out}

    def anonymize(self, video: torch.Tensor) -> torch.Tensor:
        """The anonymized clip for a raw clip (B, C, T, H, W) in [0, 1]."""
        return self.anonymizer_outputs(video)["video"]

    @property
    def takes_uint8(self) -> bool:
        """Whether :meth:`anonymize_uint8` exists for this anonymizer: the identity, or an anonymizer
        that works frame by frame at any size and has a ``forward_uint8`` (blur, downsample,
        face_blur). ``anonpriv anonymize`` then keeps frames in uint8 at their native size."""
        return isinstance(self.anonymizer, nn.Identity) or callable(getattr(self.anonymizer, "forward_uint8", None))

    def anonymize_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` of one stream, in order -> uint8 ``(N, H, W, 3)``: the same as
        :meth:`anonymize` on them as one clip in [0, 1], to within a level of rounding, with few
        full-size float frames alive at a time."""
        if isinstance(self.anonymizer, nn.Identity):
            return frames
        return self.anonymizer.forward_uint8(frames)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.anonymize(video)

    def extra_repr(self) -> str:
        return f"method_name={self.method_name!r}, clip_shape={self.clip_shape}"


def _import_object(path: str):
    module_name, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def builder_options(builder: Callable) -> list[str]:
    """The keyword arguments a builder takes by name (``*args`` / ``**kwargs`` not counted)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(builder).parameters.values() if p.kind in kinds]


def _anonymizer_from_spec(spec: MethodSpec, kwargs: Mapping) -> MethodAnonymizer:
    method_name = spec.class_name
    builder = _import_object(spec.anonymizer)
    takes = builder_options(builder)
    for key in kwargs:
        if key not in takes and key not in spec.training_options and key not in COMMON_OPTIONS:
            own = sorted(set(takes) - COMMON_OPTIONS | set(spec.training_options))
            raise TypeError(f"{method_name} got an unexpected keyword argument {key!r} (its own options: "
                            f"{', '.join(own) or 'none'}; and those of every method)")
    clip_shape = kwargs.get("clip_shape")
    if clip_shape is not None and (len(clip_shape) != 3 or min(clip_shape) < 1):
        raise ValueError(f"clip_shape={clip_shape} must be [T, H, W] with positive sizes.")
    anonymizer = builder(**{key: value for key, value in kwargs.items() if key in takes})
    return MethodAnonymizer(anonymizer, method_name, getattr(anonymizer, "clip_shape", clip_shape))


def build_anonymizer(name_or_class_path: str, **kwargs) -> MethodAnonymizer | AnonymizationMethod:
    """The anonymizer of a fresh method, e.g. ``build_anonymizer("blur", sigma=2.0)``, from the same
    options as :func:`build_method` (those that only shape training are accepted and ignored).

    For a method of the catalog this is a :class:`MethodAnonymizer` built with torch alone;
    its outputs equal those of ``build_method(...)`` in eval mode (with parameters: given the same
    random state, as the anonymizer is the first thing a method builds). Any other class path gets
    the whole method (:func:`build_method`), which has the same ``anonymizer_outputs``.
    """
    spec = find_method(name_or_class_path)
    if spec is None:
        return build_method(name_or_class_path, **kwargs)
    return _anonymizer_from_spec(spec, kwargs)


def load_checkpoint_anonymizer(checkpoint_path: str | Path,
                               map_location: str | torch.device = "cpu") -> MethodAnonymizer | AnonymizationMethod:
    """The trained anonymizer stored in a checkpoint written by ``anonpriv fit``, in eval mode.

    For a method of the catalog it is rebuilt with torch alone from the checkpoint's
    hyperparameters (:func:`read_checkpoint`) and loaded with the checkpoint's ``anonymizer.*``
    entries (all of them, strictly); its outputs equal those of :func:`load_method`'s method. A
    checkpoint of any other class gets the whole method (:func:`load_method`).
    """
    class_path, kwargs, state_dict = read_checkpoint(checkpoint_path, map_location)
    spec = find_method(class_path)
    if spec is None:
        return _rebuild_method(class_path, kwargs, state_dict)
    anonymizer = _anonymizer_from_spec(spec, kwargs)
    anonymizer.load_state_dict({key: value for key, value in state_dict.items() if key.startswith("anonymizer.")})
    return anonymizer.eval()
