"""The localization measures (kept-region overlap, CLS head quality) against hand-made masks and
regions: the measurement the localization benchmark reports (benchmarks/token_pruning_localization.py)."""

import pytest
import torch

from anonpriv.methods.token_pruning.localization import cls_head_quality, kept_region_overlap


class KeepLeftHalf:
    """Stands in for a method: keeps the left half of every frame."""

    def eval(self):
        return self

    def anonymizer_outputs(self, video):
        mask = torch.zeros(video.shape[0], 1, *video.shape[2:])
        mask[..., : video.shape[-1] // 2] = 1.0
        return {"video": video * mask, "mask": mask}


def _batch(moving_cols, private_cols, size=4):
    action = torch.zeros(1, 2, size, size, dtype=torch.bool)
    private = torch.zeros_like(action)
    action[..., moving_cols] = True
    private[..., private_cols] = True
    return {"video": torch.rand(1, 3, 2, size, size), "action_region": action, "privacy_region": private}


def test_overlap_by_hand():
    # 4 x 4 frames, left half kept. Moving: columns 0 and 3 -> half of it kept. Private: columns 1-3,
    # minus the moving column 3 -> columns 1 and 2, of which column 1 is kept -> half.
    o = kept_region_overlap(KeepLeftHalf(), [_batch([0, 3], [1, 2, 3])])
    assert (o.action, o.private, o.kept) == (0.5, 0.5, 0.5)
    # Moving on the left, private on the right: all of one, none of the other.
    o = kept_region_overlap(KeepLeftHalf(), [_batch([0, 1], [2, 3]), _batch([1], [3])])
    assert (o.action, o.private) == (1.0, 0.0)
    assert o.margin == 1.0


def test_missing_regions_name_the_fix():
    batch = _batch([0], [3])
    del batch["action_region"]
    with pytest.raises(KeyError, match="with_regions=True"):
        kept_region_overlap(KeepLeftHalf(), [batch])
    with pytest.raises(ValueError, match="no moving or no private"):
        kept_region_overlap(KeepLeftHalf(), [_batch([], [3])])


class FixedHeads:
    """Stands in for a method: the action CLS always says class 1, the privacy CLS says 'absent'
    with logit -2 for every attribute."""

    def eval(self):
        return self

    def anonymizer_outputs(self, video):
        n = video.shape[0]
        act = torch.zeros(n, 4)
        act[:, 1] = 1.0
        return {"act_cls_logits": act, "priv_cls_logits": torch.full((n, 2), -2.0)}


def test_cls_head_quality_by_hand():
    batch = {"video": torch.zeros(4, 3, 2, 4, 4), "action": torch.tensor([1, 1, 0, 3]),
             "privacy": torch.tensor([[0, 0], [0, 0], [1, 0], [1, 1]])}
    q = cls_head_quality(FixedHeads(), [batch])
    assert q.action_top1 == 0.5 and q.action_chance == 0.25
    # BCE of logit -2: label 0 -> softplus(-2), label 1 -> softplus(2); 5 zeros and 3 ones of 8.
    expected = (5 * torch.nn.functional.softplus(torch.tensor(-2.0)) + 3 * torch.nn.functional.softplus(torch.tensor(2.0))) / 8
    assert q.privacy_bce == pytest.approx(expected.item(), rel=1e-6)
    assert q.privacy_chance_bce == pytest.approx(0.6931, abs=1e-4)
    # Every clip gets the same privacy score, so each attribute's AP is its positive rate:
    # attribute 0 has 2 positives of 4 (AP 0.5), attribute 1 has 1 of 4 (AP 0.25).
    assert q.privacy_cmap == pytest.approx((0.5 + 0.25) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="no batches"):
        cls_head_quality(FixedHeads(), [])
