"""blackening: the actor (person) region of every frame blacked out; no training of the anonymizer.

The paper's Table 1 compares with "Blackening (actor region blacked out)" (docs/paper.md#table-1-within-dataset-results);
the earlier literature blacks out the actor's bounding box. Here (docs/protocol.md#baselines):

* on the synthetic data, the actor is the renderer's own person mask (every pixel of every figure),
  served in the batch as ``person_region`` when the source is built with ``with_regions: true``; each
  figure's bounding box is blacked out (``region: box``), or the mask's pixels (``region: mask``);
* on real footage (and wherever a batch has no mask, e.g. ``anonpriv anonymize``), a torchvision COCO
  person detector finds the boxes (``detector``, weights by name or ``detector_weights_file``), each
  frame once (boxes are remembered per frame content).

Everything outside the actors is left exactly as it was: the scene, the objects and the actor's
outline (a black box moving through the frame) stay visible. The anonymizer has no parameters;
like blur, only the utility and privacy models train. The anonymizer (:class:`Blackening`) lives in
:mod:`anonpriv.baselines.blackening.anonymizer`, which needs torch alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

from anonpriv.methods.base import AnonymizationMethod

from anonpriv.baselines.blackening.anonymizer import DEFAULT_DETECTOR, PERSON_REGION_KEY, Blackening


class BlackeningBaseline(AnonymizationMethod):
    """The actors blacked out: the batch's person mask when it has one, a person detector otherwise.

    Args:
        region, margin, detector, detector_weights_file, score_threshold: see :class:`Blackening`.
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`).
    """

    def __init__(self, region: Literal["box", "mask"] = "box", margin: float = 0.0,
                 detector: str | None = DEFAULT_DETECTOR, detector_weights_file: str | None = None,
                 score_threshold: float = 0.5, **kwargs) -> None:
        super().__init__(anonymizer=Blackening(region, margin, detector, detector_weights_file, score_threshold),
                         **kwargs)

    def batch_anonymizer_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Blacken with the batch's ``person_region`` when it has one (the synthetic renderer's mask)."""
        return {"video": self.anonymizer(batch["video"], batch.get(PERSON_REGION_KEY))}
