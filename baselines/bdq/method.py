"""BDQ (Kumawat & Nagahara, ECCV 2022): learnable Blur -> Difference -> Quantization.

The encoder removes appearance in three differentiable steps, each a plain ``nn.Module``:

1. :class:`LearnableGaussianBlur`: a 5x5 Gaussian per frame whose sigma (init 3) is learnt;
2. :class:`TemporalDifference`: frame t minus frame t-1, so T frames become T-1 and everything
   static (background, a still person's appearance) cancels;
3. :class:`SoftQuantizer`: each clip is scaled to [0, 15] on its own (the public code scales by the
   statistics of the whole batch, which makes a clip's output depend on the other clips in the
   batch), then a soft staircase ``sum_j sigmoid(5 (x - b_j))`` with 15 learnable thresholds that
   stay sorted by construction.

The encoder's modules live in :mod:`anonpriv.baselines.bdq.anonymizer` (torch alone, so a trained
checkpoint's encoder is rebuilt without Lightning).

Training is the base's two-phase minimax with the entropy adversary: encoder and utility model
minimise ``CE(action) - 2 * H(privacy)`` through the frozen privacy model, then the privacy model
is trained on the detached encoder output. Privacy is multi-label here, so ``H`` is the mean binary
entropy of the attributes (the paper's single-label softmax entropy does not apply).
"""

from __future__ import annotations

from typing import Literal

from anonpriv.methods.base import AnonymizationMethod

from anonpriv.baselines.bdq.anonymizer import bdq_anonymizer


class BDQBaseline(AnonymizationMethod):
    """BDQ on the common base: the encoder is ``f_A``; the minimax is the base's entropy adversary.

    The anonymized clip has one frame fewer than the input (the difference step); every utility
    and privacy model in this repository accepts any number of frames.

    Args:
        blur_kernel_size: odd size of the learnable Gaussian (BDQ: 5).
        blur_sigma: its initial sigma (BDQ: 3).
        num_thresholds: quantiser thresholds (BDQ: 15).
        staircase_slope: steepness of the soft staircase (BDQ: 5).
        adversarial_loss, adversarial_weight: the privacy term of the encoder+utility loss; BDQ's
            is ``entropy`` with weight 2 (``CE - 2 * H``).
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`). BDQ's
            paper trains with SGD (momentum 0.9), lr 0.01 and a cosine schedule.
    """

    def __init__(
        self,
        blur_kernel_size: int = 5,
        blur_sigma: float = 3.0,
        num_thresholds: int = 15,
        staircase_slope: float = 5.0,
        adversarial_loss: Literal["none", "entropy", "neg_bce"] = "entropy",
        adversarial_weight: float = 2.0,
        **kwargs,
    ) -> None:
        super().__init__(
            anonymizer=bdq_anonymizer(blur_kernel_size, blur_sigma, num_thresholds, staircase_slope,
                                      clip_shape=kwargs.get("clip_shape")),
            adversarial_loss=adversarial_loss,
            adversarial_weight=adversarial_weight,
            **kwargs,
        )
