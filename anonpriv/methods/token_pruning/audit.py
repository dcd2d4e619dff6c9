"""Where a token-pruning anonymizer keeps pixels, against ground-truth regions.

The synthetic source gives, per clip, the pixels of the moving parts (``action_region``) and of the
head, hair and torso (``privacy_region``; ``SyntheticSource(with_regions=True)``). A method that
does what the paper claims keeps much more of the first than of the second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import torch


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
