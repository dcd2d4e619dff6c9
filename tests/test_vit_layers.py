"""The torch-only ViT block shared by token pruning and the tubelet ViT equals timm's block."""

import pytest
import torch
from timm.models.vision_transformer import Block

from anonpriv.models.token_vit import TubeletViT
from anonpriv.models.vit_layers import ViTBlock
from anonpriv.models.weights import init_vit_weights


def timm_init(module):
    from timm.layers import trunc_normal_

    if isinstance(module, torch.nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        torch.nn.init.zeros_(module.bias)


def _pair(drop_path: float = 0.0, proj_drop: float = 0.0, attn_drop: float = 0.0) -> tuple[ViTBlock, Block]:
    rates = dict(drop_path=drop_path, proj_drop=proj_drop, attn_drop=attn_drop)
    torch.manual_seed(0)
    block = ViTBlock(dim=32, num_heads=4, mlp_ratio=4.0, qkv_bias=True, **rates)
    block.apply(init_vit_weights)
    torch.manual_seed(0)
    reference = Block(dim=32, num_heads=4, mlp_ratio=4.0, qkv_bias=True, **rates)
    reference.apply(timm_init)
    return block, reference


@pytest.mark.parametrize(("drop_path", "proj_drop", "attn_drop"), [(0.0, 0.0, 0.0), (0.2, 0.0, 0.0), (0.2, 0.2, 0.1)])
def test_block_equals_the_timm_block(drop_path, proj_drop, attn_drop):
    # Same seed -> timm's initial weights (same parameter names, order and init); same outputs in
    # evaluation and, with stochastic depth, dropout and attention dropout, in training; and timm's
    # blocks load into it.
    block, reference = _pair(drop_path, proj_drop, attn_drop)
    assert list(block.state_dict()) == list(reference.state_dict())
    for name, value in reference.state_dict().items():
        assert torch.equal(block.state_dict()[name], value), name
    x = torch.randn(2, 10, 32)
    block.eval(), reference.eval()
    halves, cls_rows = block.attention_half(x)
    assert torch.allclose(block.mlp_half(halves), reference(x), atol=1e-5)
    assert torch.allclose(block(x), reference(x), atol=1e-5)
    assert cls_rows.shape == (2, 2, 10) and torch.allclose(cls_rows.sum(-1), torch.ones(2, 2))
    block.train(), reference.train()
    torch.manual_seed(1)
    trained = block(x)
    torch.manual_seed(1)
    assert torch.allclose(trained, reference(x), atol=1e-5)
    other = Block(dim=32, num_heads=4, mlp_ratio=4.0, qkv_bias=True)
    block.load_state_dict(other.state_dict())  # strict: the names match


def test_attention_mask_hides_padded_keys_as_in_timm():
    block, reference = _pair()
    block.eval(), reference.eval()
    x = torch.randn(2, 6, 32)
    padded = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    mask = torch.zeros(2, 6).masked_fill(padded, float("-inf"))[:, None, None, :]
    out = block(x, attn_mask=mask)
    assert torch.allclose(out, reference(x, attn_mask=mask), atol=1e-5)
    # The second clip's first four tokens do not see its padded two: same as the clip cut to four.
    assert torch.allclose(out[1, :4], block(x[1:, :4])[0], atol=1e-5)
    assert not torch.allclose(out[1, :4], block(x[1:])[0, :4], atol=1e-3)


def test_tubelet_vit_keeps_the_weights_and_outputs_it_had_with_timm_blocks(monkeypatch):
    # The action model was built from timm blocks before these layers existed: a seed gives the same
    # initial weights and the same outputs (full clip and a padded tubelet subset) as it did then.
    import anonpriv.models.token_vit as token_vit

    kwargs = dict(num_classes=5, clip_shape=(8, 16, 16), tubelet=(2, 4, 4), embed_dim=32, depth=2, num_heads=2)
    torch.manual_seed(3)
    ours = TubeletViT(**kwargs).eval()
    monkeypatch.setattr(token_vit, "ViTBlock", Block)
    torch.manual_seed(3)
    theirs = TubeletViT(**kwargs).eval()
    assert isinstance(theirs.blocks[0], Block) and not isinstance(ours.blocks[0], Block)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    clip = torch.rand(2, 3, 8, 16, 16)
    ids = torch.tensor([[0, 5, 9, -1], [1, 2, 3, 4]])
    assert torch.allclose(ours(clip), theirs(clip), atol=1e-5)
    assert torch.allclose(ours.forward_tubelets(clip, ids), theirs.forward_tubelets(clip, ids), atol=1e-5)
