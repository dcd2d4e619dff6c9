"""The protocol's numbers: action top-1, privacy cMAP and macro F1 (docs/protocol.md#metrics).

* cMAP is the macro mean of per-attribute average precision, computed on *probabilities*
  (the same as torchmetrics' ``MultilabelAveragePrecision(average="macro")`` over the kept
  attributes, computed per attribute so a single attribute works too).
* F1 is the macro mean of per-attribute F1 with the attribute predicted present when its
  probability exceeds ``threshold`` (0.5). Public code thresholds raw logits at 0.5, i.e.
  probabilities at 0.62; we threshold probabilities and say so.
* An attribute with no positive in the evaluated set has no defined AP (torchmetrics returns 0):
  it is excluded from both means and named in ``excluded``.
* Beside AP, :func:`positive_rates` gives each attribute's share of positive labels: on real data
  some "visible" bits are almost always 1 (docs/protocol.md#privacy-labels), and an AP near that
  rate says little.
"""

from __future__ import annotations

import dataclasses

import torch
from torchmetrics.functional.classification import binary_average_precision, binary_f1_score, multiclass_accuracy


@dataclasses.dataclass
class PrivacyScores:
    cmap: float
    f1: float
    per_attribute_ap: dict[str, float]
    per_attribute_f1: dict[str, float]
    excluded: list[str]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def action_top1(probs_or_logits: torch.Tensor, target: torch.Tensor) -> float:
    """Top-1 accuracy over samples (micro average), in [0, 1]."""
    num_classes = probs_or_logits.shape[-1]
    return float(multiclass_accuracy(probs_or_logits, target, num_classes=num_classes, average="micro"))


def privacy_scores(probs: torch.Tensor, target: torch.Tensor, names: list[str], threshold: float = 0.5) -> PrivacyScores:
    """cMAP and macro F1 of multi-label ``probs`` (N, P) against 0/1 ``target`` (N, P)."""
    if probs.shape != target.shape:
        raise ValueError(f"privacy predictions {tuple(probs.shape)} and labels {tuple(target.shape)} differ in shape")
    if len(names) != probs.shape[1]:
        raise ValueError(f"{len(names)} attribute names for {probs.shape[1]} attributes")
    if probs.numel() and (probs.min() < 0 or probs.max() > 1):
        raise ValueError("privacy_scores takes probabilities in [0, 1]; apply a sigmoid to logits first")
    target = target.long()
    keep = target.sum(dim=0) > 0
    excluded = [n for n, k in zip(names, keep.tolist()) if not k]
    kept_names = [n for n, k in zip(names, keep.tolist()) if k]
    if not kept_names:
        nan = float("nan")
        return PrivacyScores(nan, nan, {}, {}, excluded)
    columns = keep.nonzero().flatten().tolist()
    ap = [float(binary_average_precision(probs[:, j], target[:, j])) for j in columns]
    f1 = [float(binary_f1_score(probs[:, j], target[:, j], threshold=threshold)) for j in columns]
    return PrivacyScores(
        cmap=sum(ap) / len(ap),
        f1=sum(f1) / len(f1),
        per_attribute_ap=dict(zip(kept_names, ap)),
        per_attribute_f1=dict(zip(kept_names, f1)),
        excluded=excluded,
    )


def average_by_video(ids: list[str], *per_clip: torch.Tensor) -> tuple[list[str], list[torch.Tensor]]:
    """Average each per-clip tensor over the clips of one video (test-time multi-clip evaluation).

    Returns the unique video ids in first-seen order and the averaged tensors in that order.
    """
    order: dict[str, int] = {}
    index = torch.tensor([order.setdefault(i, len(order)) for i in ids], dtype=torch.long)
    counts = torch.bincount(index, minlength=len(order)).clamp_min(1)
    averaged = []
    for tensor in per_clip:
        sums = torch.zeros((len(order),) + tuple(tensor.shape[1:]), dtype=torch.float64)
        sums.index_add_(0, index, tensor.double())
        averaged.append((sums / counts.view(-1, *([1] * (tensor.dim() - 1)))).to(tensor.dtype))
    return list(order), averaged


def positive_rates(target: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Share of the rows (videos) of 0/1 ``target`` (N, P) that are positive, per attribute name."""
    if len(names) != target.shape[1]:
        raise ValueError(f"{len(names)} attribute names for {target.shape[1]} attributes")
    if target.shape[0] == 0:
        return {name: float("nan") for name in names}
    rates = (target.float() > 0.5).double().mean(dim=0).tolist()
    return dict(zip(names, (float(r) for r in rates)))
