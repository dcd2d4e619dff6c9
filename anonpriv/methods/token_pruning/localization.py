"""Localization of a token-pruning anonymizer: where it keeps pixels, against ground-truth regions.

The synthetic source gives, per clip, the pixels of the moving parts (``action_region``) and of the
head, hair and torso (``privacy_region``; ``SyntheticSource(with_regions=True)``). A method that
does what the paper claims keeps much more of the first than of the second.

The mask comes from the two CLS tokens' attention, which only marks action and private evidence
once the CLS heads have learned their tasks; :func:`cls_head_quality` says whether they have.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from anonpriv.metrics.functional import privacy_scores


@dataclasses.dataclass(frozen=True)
class KeptOverlap:
    """Shares of pixels the kept mask covers.

    ``action``: of the moving region; ``private``: of the private region that does not move;
    ``kept``: of all pixels.
    """

    action: float
    private: float
    kept: float

    @property
    def margin(self) -> float:
        """``action - private``: how much more of the moving region than of the private one is kept."""
        return self.action - self.private


def kept_region_overlap(method, batches: Iterable[Mapping[str, torch.Tensor]]) -> KeptOverlap:
    """Run ``method.anonymizer_outputs`` in eval mode over ``batches`` (dicts with ``video``,
    ``action_region``, ``privacy_region``) and measure the kept mask against the regions."""
    kept_action = action = kept_private = private = kept = total = 0
    method.eval()
    with torch.inference_mode():
        for batch in batches:
            if "action_region" not in batch or "privacy_region" not in batch:
                raise KeyError("batches need 'action_region' and 'privacy_region': build the synthetic "
                               "source with with_regions=True.")
            mask = method.anonymizer_outputs(batch["video"])["mask"][:, 0] > 0.5
            moving = batch["action_region"]
            still_private = batch["privacy_region"] & ~moving
            kept_action += (mask & moving).sum().item()
            action += moving.sum().item()
            kept_private += (mask & still_private).sum().item()
            private += still_private.sum().item()
            kept += mask.sum().item()
            total += mask.numel()
    if not action or not private:
        raise ValueError("the batches contain no moving or no private pixels: nothing to measure.")
    return KeptOverlap(action=kept_action / action, private=kept_private / private, kept=kept / total)


@dataclasses.dataclass(frozen=True)
class ClsHeadQuality:
    """How well the two CLS heads do their own tasks on held-out clips, against chance.

    ``action_top1`` (chance ``1 / num_actions``) of the action CLS; ``privacy_bce`` (mean binary
    cross-entropy, ``ln 2 = 0.693`` for a head that predicts 0.5) and ``privacy_cmap`` (mean over
    attributes of the average precision; chance is each attribute's positive rate, about 0.5 on the
    synthetic data) of the privacy CLS.
    """

    action_top1: float
    action_chance: float
    privacy_bce: float
    privacy_cmap: float = float("nan")

    @property
    def privacy_chance_bce(self) -> float:
        return math.log(2.0)


def cls_head_quality(method, batches: Iterable[Mapping[str, torch.Tensor]]) -> ClsHeadQuality:
    """Top-1 of ``act_cls_logits`` and BCE of ``priv_cls_logits`` from ``method.anonymizer_outputs``
    in eval mode over ``batches`` (dicts with ``video``, ``action``, ``privacy``)."""
    correct = count = labels = num_actions = 0
    bce_sum = 0.0
    probs, targets = [], []
    method.eval()
    with torch.inference_mode():
        for batch in batches:
            out = method.anonymizer_outputs(batch["video"])
            act, priv = out["act_cls_logits"], out["priv_cls_logits"]
            num_actions = act.shape[1]
            correct += (act.argmax(dim=1) == batch["action"]).sum().item()
            count += act.shape[0]
            bce_sum += F.binary_cross_entropy_with_logits(priv, batch["privacy"].float(), reduction="sum").item()
            labels += priv.numel()
            probs.append(torch.sigmoid(priv.float()))
            targets.append(batch["privacy"].float())
    if not count:
        raise ValueError("no batches to measure the CLS heads on.")
    probs_all, targets_all = torch.cat(probs), torch.cat(targets)
    names = [f"attribute_{j}" for j in range(probs_all.shape[1])]
    cmap = privacy_scores(probs_all, targets_all, names).cmap
    return ClsHeadQuality(action_top1=correct / count, action_chance=1.0 / num_actions,
                          privacy_bce=bce_sum / labels, privacy_cmap=cmap)
