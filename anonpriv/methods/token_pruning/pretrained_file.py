"""The file format of a pretrained dual-CLS backbone (``anonpriv pretrain``'s output, the shipped
``anonpriv:NAME`` weights): writing, reading and loading it into a :class:`DualCLSTubeletViT`.

Torch alone: the pretraining LightningModule is in :mod:`anonpriv.methods.token_pruning.pretrain`,
so the token-pruning anonymizer is built from such a file without Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

from anonpriv.methods.token_pruning.model import DualCLSTubeletViT

PRETRAINED_FORMAT = "anonpriv.dual_cls_vit/1"
#: ``pretrained_file: anonpriv:NAME`` names a file shipped in this folder (``NAME.pt``).
BUILTIN_PREFIX = "anonpriv:"
BUILTIN_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"

# The shape of the backbone a pretrained file holds; a model must match it to load the file (the clip
# shape may differ: the position embeddings are then resampled to the model's tubelet grid).
GEOMETRY_KEYS = ("tubelet", "embed_dim", "depth", "num_heads", "mlp_ratio", "stem", "stem_width", "motion_channels")


def resolve_weights_file(name: str | Path) -> Path:
    """``anonpriv:NAME`` -> the shipped ``anonpriv/weights/NAME.pt``; any other value is a path."""
    text = str(name)
    if text.startswith(BUILTIN_PREFIX):
        path = BUILTIN_WEIGHTS_DIR / f"{text[len(BUILTIN_PREFIX):]}.pt"
        if not path.is_file():
            shipped = sorted(p.stem for p in BUILTIN_WEIGHTS_DIR.glob("*.pt"))
            raise FileNotFoundError(
                f"no shipped weights {text!r}: the shipped ones are {[BUILTIN_PREFIX + s for s in shipped]} "
                "(remake them with `make pretrain`)."
            )
        return path
    return Path(text)


def vit_geometry(vit: DualCLSTubeletViT) -> dict:
    """The plain-typed shape of ``vit`` (what :data:`GEOMETRY_KEYS` names)."""
    return {"clip_shape": list(vit.embed.clip_shape), "tubelet": list(vit.embed.tubelet),
            "embed_dim": vit.pos_embed.shape[-1], "depth": len(vit.blocks), "num_heads": vit.blocks[0].attn.num_heads,
            "mlp_ratio": vit.blocks[0].mlp.fc1.out_features / vit.pos_embed.shape[-1], "stem": vit.stem_name,
            "stem_width": vit.stem_width, "motion_channels": vit.embed.motion_channels}


def read_pretrained(path: str | Path) -> dict | None:
    """The contents of a file written by :func:`save_pretrained` (with its resolved ``file``), or
    ``None`` when ``path`` is not one (a 2D timm ViT, say, or no file at all)."""
    path = resolve_weights_file(path)
    if not path.is_file() or path.suffix not in (".pt", ".pth"):
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file of ours: leave it to the timm loader, which names the problem
        return None
    if not isinstance(payload, dict) or payload.get("format") != PRETRAINED_FORMAT:
        return None
    return dict(payload, file=str(path))


def is_pretrained_file(path: str | Path) -> bool:
    """Whether ``path`` is a file written by :func:`save_pretrained` (not a 2D timm ViT)."""
    return read_pretrained(path) is not None


def save_pretrained(vit: DualCLSTubeletViT, path: str | Path, action_names: list[str], privacy_names: list[str],
                    metrics: Mapping[str, float] | None = None) -> Path:
    """Write the backbone and both CLS heads, its geometry and label names to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": PRETRAINED_FORMAT,
        "geometry": vit_geometry(vit),
        "action_names": list(action_names),
        "privacy_names": list(privacy_names),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in vit.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def load_pretrained(vit: DualCLSTubeletViT, source: str | Path | dict, action_names: list[str] | None = None,
                    privacy_names: list[str] | None = None) -> dict:
    """Load a :func:`save_pretrained` file (its path, or what :func:`read_pretrained` returned for
    it) into ``vit``; returns a report of what was loaded.

    The geometry must match exactly (a clear error names the differences), except the clip shape:
    for other clip sizes the position embeddings are resampled (trilinear) to the model's tubelet
    grid, as the paper resamples ImageNet's. The two CLS heads are loaded only when the label names
    match the file's (same actions / attributes in the same order); otherwise they stay fresh, as
    the paper's heads do after its ImageNet start.
    """
    payload = source if isinstance(source, dict) else read_pretrained(source)
    if payload is None:
        path = resolve_weights_file(source)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights {str(path)!r} do not exist: run `make pretrain` or pass a file.")
        raise ValueError(f"{str(path)!r} is not a dual-CLS ViT file written by `anonpriv pretrain`.")
    path = payload["file"]
    mine, theirs = vit_geometry(vit), payload["geometry"]
    differ = {k: (theirs.get(k), mine[k]) for k in GEOMETRY_KEYS if _plain(theirs.get(k)) != _plain(mine[k])}
    if differ:
        detail = ", ".join(f"{k}: file {a!r} vs model {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"pretrained weights {path!r} were made for another ViT shape ({detail}): build the "
                         "method with the file's shape, or pretrain one for this shape with `anonpriv pretrain`.")
    state = dict(payload["state_dict"])
    heads = {"act_head": action_names is not None and list(action_names) == payload["action_names"],
             "priv_head": privacy_names is not None and list(privacy_names) == payload["privacy_names"]}
    for head, keep in heads.items():
        if not keep:
            for key in [k for k in state if k.startswith(head + ".")]:
                state[key] = getattr(vit, head).state_dict()[key.split(".", 1)[1]]
    grid, file_grid = list(vit.grid), [c // t for c, t in zip(theirs["clip_shape"], theirs["tubelet"])]
    if grid != file_grid:
        state["pos_embed"] = resample_position_embedding(state["pos_embed"], file_grid, grid)
    vit.load_state_dict(state, strict=True)
    return {"file": path, "heads_loaded": [h for h, keep in heads.items() if keep],
            "resampled_grid": (file_grid, grid) if grid != file_grid else None, "metrics": payload.get("metrics", {})}


def resample_position_embedding(pos_embed: torch.Tensor, old_grid: list[int], new_grid: list[int]) -> torch.Tensor:
    """(1, t*h*w, D) position embeddings on ``old_grid`` (t, h, w) -> the same on ``new_grid``."""
    D = pos_embed.shape[-1]
    volume = pos_embed.reshape(1, *old_grid, D).permute(0, 4, 1, 2, 3)
    volume = F.interpolate(volume, size=tuple(new_grid), mode="trilinear", align_corners=False)
    return volume.permute(0, 2, 3, 4, 1).reshape(1, -1, D)


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
