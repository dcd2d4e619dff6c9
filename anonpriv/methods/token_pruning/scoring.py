"""The utility-privacy score and top-k pruning with fusion, as tensor ops (no loops over tokens).

Token layout everywhere: ``[act_cls, priv_cls, patch_1 ... patch_M]`` where the patch tokens are
tubelets and, after the first pruning stage, one fused token (tubelet id ``-1``).
"""

from __future__ import annotations

import math

import torch

NUM_CLS = 2  # act_cls, priv_cls


def keep_count(num_tokens: int, keep_ratio: float) -> int:
    """How many of ``num_tokens`` a stage keeps: ``ceil(keep_ratio * num_tokens)``, at least 1."""
    check_keep_ratio(keep_ratio)
    return max(1, min(num_tokens, math.ceil(keep_ratio * num_tokens - 1e-9)))


def check_keep_ratio(keep_ratio: float) -> None:
    if not (isinstance(keep_ratio, (int, float)) and 0.0 < keep_ratio <= 1.0):
        raise ValueError(
            f"keep_ratio={keep_ratio!r} is impossible: it is the fraction of tokens each pruning stage "
            "keeps, so choose a value in (0, 1] (1.0 keeps every tubelet)."
        )


def cls_to_patch_attention(cls_attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split head-averaged CLS attention rows (B, 2, N) into ``a_act``, ``a_priv`` (B, M).

    Columns of the two CLS tokens are dropped and each row is renormalised to sum to 1 over the
    patch tokens.
    """
    patch = cls_attention[:, :, NUM_CLS:]
    patch = patch / patch.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return patch[:, 0], patch[:, 1]


def utility_privacy_score(a_act: torch.Tensor, a_priv: torch.Tensor, lambda_priv: float) -> torch.Tensor:
    """``s_i = a_act_i - lambda_priv * a_priv_i``: high for action evidence, low for private evidence."""
    return a_act - lambda_priv * a_priv


def prune_and_fuse(
    x: torch.Tensor, ids: torch.Tensor, score: torch.Tensor, a_act: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the ``keep`` patch tokens with the highest score; fuse the rest into one token.

    Args:
        x: tokens (B, 2 + M, D), CLS first.
        ids: tubelet id of each patch token (B, M); ``-1`` marks an earlier fused token.
        score: (B, M) utility-privacy score of each patch token.
        a_act: (B, M) action-CLS attention, the fusion weights.
        keep: number of patch tokens kept (1 <= keep <= M).

    Returns:
        ``x`` (B, 2 + keep + 1, D) with the fused token ``sum_j a_act_j x_j`` over the pruned tokens
        last (or (B, 2 + M, D) unchanged when ``keep == M``), the matching ``ids``, and the kept
        positions (B, keep) into the input patch tokens.
    """
    B, M = score.shape
    if not 1 <= keep <= M:
        raise ValueError(f"cannot keep {keep} of {M} tokens")
    if keep == M:
        return x, ids, torch.arange(M, device=x.device).expand(B, M)
    kept_pos = score.topk(keep, dim=1, sorted=False).indices.sort(dim=1).values  # keep the original order
    patches = x[:, NUM_CLS:]
    D = patches.shape[-1]
    kept = patches.gather(1, kept_pos.unsqueeze(-1).expand(B, keep, D))
    pruned_weight = a_act.scatter(1, kept_pos, 0.0)  # a_act of pruned tokens, 0 for kept ones
    fused = torch.einsum("bm,bmd->bd", pruned_weight, patches).unsqueeze(1)
    new_x = torch.cat([x[:, :NUM_CLS], kept, fused], dim=1)
    new_ids = torch.cat([ids.gather(1, kept_pos), ids.new_full((B, 1), -1)], dim=1)
    return new_x, new_ids, kept_pos


def kept_tubelet_mask(ids: torch.Tensor, num_tubelets: int) -> torch.Tensor:
    """Boolean (B, num_tubelets): which tubelet ids survive in ``ids`` (fused id ``-1`` ignored)."""
    B = ids.shape[0]
    mask = torch.zeros(B, num_tubelets + 1, dtype=torch.bool, device=ids.device)
    mask.scatter_(1, torch.where(ids < 0, num_tubelets, ids), True)
    return mask[:, :num_tubelets]
