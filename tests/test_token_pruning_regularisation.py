"""Dropout, attention dropout and stochastic depth of the dual-CLS ViT (the paper's config sets the
authors' 0.2 / 0.1 / 0.2, docs/paper.md#regularisation): each changes the output in training and
none in evaluation; at 0 the model is exactly what it was without them."""

import pytest
import torch

from anonpriv.methods.token_pruning import DualCLSTubeletViT
from anonpriv.methods.token_pruning.anonymizer import token_pruning_anonymizer

SHAPE = dict(clip_shape=(4, 16, 16), num_actions=3, num_privacy=2, tubelet=(2, 4, 4), embed_dim=32, depth=3,
             num_heads=4, prune_blocks=(2,), keep_ratio=0.5, motion_channels=False, stem="linear")


def _pair(**rates) -> tuple[DualCLSTubeletViT, DualCLSTubeletViT]:
    """The same weights without and with ``rates``."""
    torch.manual_seed(0)
    plain = DualCLSTubeletViT(**SHAPE)
    torch.manual_seed(0)
    regularised = DualCLSTubeletViT(**SHAPE, **rates)
    regularised.load_state_dict(plain.state_dict())  # dropout has no parameters: strict load
    return plain, regularised


@pytest.mark.parametrize("rates", [dict(drop_rate=0.2), dict(attn_drop_rate=0.1), dict(drop_path_rate=0.2),
                                   dict(drop_rate=0.2, attn_drop_rate=0.1, drop_path_rate=0.2)])
def test_each_rate_acts_in_training_and_not_in_evaluation(rates):
    plain, regularised = _pair(**rates)
    clip = torch.rand(4, 3, 4, 16, 16)
    plain.eval(), regularised.eval()
    with torch.no_grad():
        a, b = plain(clip), regularised(clip)
    assert torch.equal(a.action_logits, b.action_logits) and torch.equal(a.privacy_logits, b.privacy_logits)
    assert torch.equal(a.tubelet_mask, b.tubelet_mask)
    plain.train(), regularised.train()
    with torch.no_grad():
        torch.manual_seed(1)
        a = plain(clip)
        torch.manual_seed(1)
        b = regularised(clip)
        torch.manual_seed(2)
        c = regularised(clip)
    assert not torch.allclose(a.action_logits, b.action_logits)
    assert not torch.allclose(b.action_logits, c.action_logits)  # random: a new draw each pass


def test_rates_reach_the_blocks_and_zero_changes_nothing():
    vit = DualCLSTubeletViT(**SHAPE, drop_rate=0.2, attn_drop_rate=0.1, drop_path_rate=0.2)
    for block in vit.blocks:
        assert block.attn.attn_drop.p == 0.1 and block.attn.proj_drop.p == 0.2
        assert block.mlp.drop1.p == 0.2 and block.mlp.drop2.p == 0.2
    assert [round(block.drop_path1.rate, 6) for block in vit.blocks] == [0.0, 0.1, 0.2]  # linear over depth
    assert vit.pos_drop.p == 0.2
    # At 0 (every default) the training forward is deterministic, as before these options existed.
    plain, _ = _pair()
    plain.train()
    clip = torch.rand(2, 3, 4, 16, 16)
    torch.manual_seed(5)
    first = plain(clip).action_logits
    torch.manual_seed(6)
    assert torch.equal(first, plain(clip).action_logits)


def test_rates_pass_through_the_anonymizer_builder_and_are_checked():
    anonymizer = token_pruning_anonymizer(**{k: v for k, v in SHAPE.items() if k not in ("num_actions", "num_privacy")},
                                          drop_rate=0.2, attn_drop_rate=0.1, drop_path_rate=0.2)
    assert anonymizer.vit.blocks[0].attn.attn_drop.p == 0.1 and anonymizer.vit.pos_drop.p == 0.2
    with pytest.raises(ValueError, match="attn_drop_rate"):
        DualCLSTubeletViT(**SHAPE, attn_drop_rate=1.0)
