"""Weights: pretrained weights from a local file, and pretrained weights by name through timm's /
torchvision's own download and cache. (The fresh ViT initialisation is a layer:
:mod:`anonpriv.layers.init`.)

Nothing is downloaded unless a config asks for it by name (``pretrained: true`` or a timm name);
a local file is never downloaded. A failed download is one :class:`WeightsDownloadError` line that
names the fix (a local file)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_local_weights(model: nn.Module, path: str | Path, strict: bool = False, skip_prefixes: tuple[str, ...] = ()) -> None:
    """Load a state dict saved with ``torch.save`` (or a Lightning checkpoint) into ``model``.

    Keys whose shapes disagree with the model (a classifier head with another number of classes)
    and keys starting with ``skip_prefixes`` are left at their fresh initialisation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist: pass the path of a local .pth/.pt/.ckpt file "
            "(weights are never downloaded)."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    kept = {
        k: v for k, v in state.items()
        if k in own and own[k].shape == v.shape and not k.startswith(skip_prefixes)
    }
    if not kept:
        raise ValueError(
            f"no tensor in {str(path)!r} matches the model: is it the weights of the right architecture?"
        )
    missing, _ = model.load_state_dict(kept, strict=False)
    if strict and missing:
        raise ValueError(f"weights file {str(path)!r} lacks {len(missing)} tensors, e.g. {missing[:3]}")


# -- pretrained weights by name (timm / torchvision download and cache) -------------------------
#: timm model-name prefixes that name a *source*, not an architecture: ``hf-hub:org/name`` makes timm
#: fetch the model's config and weights from the Hugging Face Hub, ``local-dir:/path`` reads both from
#: a local folder. They always decide where the weights come from, whatever file is given beside them.
SOURCE_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")

#: The ImageNet statistics, the fallback when a timm model's ``pretrained_cfg`` names none.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsDownloadError(ConnectionError, ValueError):
    """Pretrained weights asked for by name could not be fetched (no internet, no cached copy).

    A ``ValueError`` too, so the ``anonpriv`` command prints it as a one-line configuration error:
    the fix is a configuration change (a local file)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def has_source_prefix(name: str) -> bool:
    return str(name).startswith(SOURCE_PREFIXES)


def create_timm_model(
    name: str,
    *,
    pretrained: bool | str = False,
    weights_file: str | Path | None = None,
    file_option: str = "weights_file",
    **kwargs,
) -> nn.Module:
    """A timm model with no weights, weights downloaded by name, or weights from a local file.

    * ``pretrained=False`` and no ``weights_file``: fresh initialisation, nothing is read.
    * ``pretrained=True``: the weights of ``name`` (its default tag, or the tag in the name, e.g.
      ``vit_base_patch16_224.augreg_in21k_ft_in1k``) through timm's own download and cache
      (Hugging Face Hub or URL, cached under ``~/.cache``); ``pretrained="<timm name>"``: that
      model's weights (the string replaces ``name``). ``hf-hub:org/name`` fetches config and weights
      from the Hub; ``local-dir:/path`` reads both from a local folder.
    * ``weights_file``: a local file of ``name``'s weights, read by timm through
      ``pretrained_cfg_overlay=dict(file=...)`` (same adaptation as a download: classifier replaced,
      position embeddings resampled). Never downloaded. ``name`` must then be a plain timm name:
      with a ``hf-hub:`` / ``local-dir:`` name timm would ignore the file, so that is refused.

    ``model.pretrained_cfg`` says the input statistics of the weights (:func:`timm_normalization`).
    A failed download raises :class:`WeightsDownloadError`, one line naming the fix (``file_option``).
    """
    import timm

    if weights_file and pretrained:
        raise ValueError(
            f"both {file_option}={str(weights_file)!r} and pretrained={pretrained!r} are set: keep one "
            "(a local file, or weights downloaded by name)."
        )
    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file {str(path)!r} does not exist: pass a local .pth/.safetensors/.npz file of a timm "
                f"{name!r} (a file is never downloaded; set pretrained: true to download by name)."
            )
        if has_source_prefix(name):
            raise ValueError(
                f"model {name!r} names a source, so timm would take its config and weights from there and ignore "
                f"{file_option}={str(path)!r}: name the architecture with a plain timm name (e.g. "
                f"{_plain_name(name)!r}) to load the local file, or drop the file to download from the source."
            )
        return _create(timm, name, file_option, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)),
                       **kwargs)
    if pretrained:
        model_name = pretrained if isinstance(pretrained, str) else name
        return _create(timm, model_name, file_option, pretrained=True, download=True, **kwargs)
    return _create(timm, name, file_option, pretrained=False, **kwargs)


def _plain_name(name: str) -> str:
    text = str(name)
    for prefix in SOURCE_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.rsplit("/", 1)[-1].split("@", 1)[0] or "vit_base_patch16_224"


def _create(timm, name: str, file_option: str, download: bool = False, **kwargs) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except RuntimeError as error:
        message = str(error)
        if message.startswith("Unknown model"):
            raise ValueError(f"timm has no model {name!r}: see timm.list_models() for the names.") from error
        if message.startswith("No pretrained weights exist"):
            raise ValueError(
                f"timm has no pretrained weights for {name!r}: name a tag that has some, e.g. "
                f"{name.split('.', 1)[0]}.<tag> from timm.list_pretrained({name.split('.', 1)[0]!r}), or pass a "
                f"local file as {file_option}."
            ) from error
        raise
    except OSError as error:  # URL / Hub failures, missing cache in offline mode
        if not download:
            raise
        if name.startswith("local-dir:"):
            raise FileNotFoundError(
                f"timm could not read {name!r} ({_first_line(error)}): the folder must hold timm's config.json "
                "and the weights (as timm's save_for_hf writes them)."
            ) from error
        raise WeightsDownloadError(
            f"could not download the pretrained weights {name!r} ({_first_line(error)}): without internet, "
            f"fetch them once where there is (timm caches them{_timm_weights_source(timm, name)}), then pass the "
            f"local file as {file_option} (in place of pretrained) with a plain timm model name."
        ) from error


def _timm_weights_source(timm, name: str) -> str:
    """``'; the file: <where>'`` for a timm name whose pretrained config says where its weights are
    (the Hub repository, else the URL); empty when it says nothing."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        return ""
    if cfg is None:
        return ""
    if cfg.hf_hub_id:
        return f"; the file: model.safetensors of https://huggingface.co/{cfg.hf_hub_id}"
    return f"; the file: {cfg.url}" if cfg.url else ""


def timm_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` a timm model's weights expect (its ``pretrained_cfg``), e.g. 0.5 / 0.5 for the
    AugReg ViTs, the ImageNet statistics for most CNNs and DeiT; ImageNet's when the config names none."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean") or IMAGENET_MEAN, cfg.get("std") or IMAGENET_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def torchvision_weights(weights_enum: type, pretrained: bool | str):
    """The member of a torchvision ``WeightsEnum`` asked for: ``True`` -> ``DEFAULT``, or its name
    (``KINETICS400_V1``); a clear error for an unknown name."""
    key = "DEFAULT" if pretrained is True else str(pretrained)
    try:
        return weights_enum[key]
    except KeyError:
        names = ["DEFAULT", *(w.name for w in weights_enum)]
        raise ValueError(f"pretrained={pretrained!r}: {weights_enum.__name__} has {names}.") from None


def load_torchvision_state_dict(weights, file_option: str = "weights_file") -> dict:
    """``weights.get_state_dict()`` through torchvision's own download and cache (``$TORCH_HOME``);
    a failure is one :class:`WeightsDownloadError` line naming the local-file fix."""
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except OSError as error:
        raise WeightsDownloadError(
            f"could not download the pretrained weights {weights!s} from {weights.url} ({_first_line(error)}): "
            f"without internet, fetch that file once where there is, then pass it as {file_option}."
        ) from error
