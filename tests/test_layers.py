"""The torch-only layers (anonpriv/layers/) against their references.

* the ViT block equals timm's block: same parameter names, initial weights for a seed, outputs in
  evaluation and in training (stochastic depth, dropout), and the same attention mask semantics;
* the tubelet ops equal a strided Conv3d and plain row selection;
* the tubelet embedding's convolutional stem reaches the tubelet grid;
* ``trunc_normal_`` draws timm's numbers; DANN's ramp has its values; gradient scaling scales only
  the gradient.
"""

import math

import pytest
import torch
from timm.models.vision_transformer import Block

from anonpriv.layers import (
    TubeletEmbedding,
    ViTBlock,
    dann_ramp,
    gather_rows,
    gather_tubelets,
    init_vit_weights,
    patchify_tubelets,
    scale_gradient,
    trunc_normal_,
)


# -- vit -------------------------------------------------------------------------------------------
def timm_init(module):
    from timm.layers import trunc_normal_ as timm_trunc_normal_

    if isinstance(module, torch.nn.Linear):
        timm_trunc_normal_(module.weight, std=0.02)
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


# -- tubelets --------------------------------------------------------------------------------------
def test_patchify_matches_a_strided_conv3d():
    video = torch.rand(2, 3, 4, 8, 12)
    conv = torch.nn.Conv3d(3, 7, kernel_size=(2, 4, 4), stride=(2, 4, 4), bias=False)
    expected = conv(video).flatten(2).transpose(1, 2)  # (B, N, 7) in (time, row, column) order
    rows = patchify_tubelets(video, (2, 4, 4))
    assert rows.shape == (2, 2 * 2 * 3, 3 * 2 * 4 * 4)
    torch.testing.assert_close(rows @ conv.weight.flatten(1).T, expected, rtol=1e-5, atol=1e-5)


def test_gathering_tubelets_equals_selecting_rows_of_the_full_patchify():
    video = torch.rand(2, 3, 6, 8, 12)
    ids = torch.tensor([[0, 5, 17, 11], [3, 3, 8, -1]])
    expected = gather_rows(patchify_tubelets(video, (2, 4, 4)), ids)
    assert torch.equal(gather_tubelets(video, (2, 4, 4), ids), expected)


def test_gather_rows_broadcasts_a_shared_table():
    table = torch.arange(12.0).view(1, 4, 3)
    ids = torch.tensor([[3, 0], [1, -1]])
    out = gather_rows(table, ids)
    assert out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [9.0, 10.0, 11.0] and out[1, 1].tolist() == [0.0, 1.0, 2.0]


def test_conv_stem_tokens_follow_the_tubelet_grid():
    embed = TubeletEmbedding((8, 16, 16), (2, 4, 4), 32, motion_channels=True, stem="conv")
    assert embed(torch.rand(1, 3, 8, 16, 16)).shape == (1, 64, 32)
    with pytest.raises(ValueError, match="clip of shape"):
        embed(torch.rand(1, 3, 8, 32, 32))
    assert math.prod(embed.grid) == embed.num_tubelets


# -- init ------------------------------------------------------------------------------------------
def test_trunc_normal_draws_what_timm_draws_and_stays_in_bounds():
    from timm.layers import trunc_normal_ as timm_trunc_normal_

    ours, theirs = torch.empty(4096), torch.empty(4096)
    torch.manual_seed(7)
    trunc_normal_(ours, std=0.02)
    torch.manual_seed(7)
    timm_trunc_normal_(theirs, std=0.02)
    assert torch.equal(ours, theirs)
    assert abs(ours.std().item() - 0.02) < 0.002 and ours.abs().max() <= 2.0
    wide = trunc_normal_(torch.empty(4096), std=1.0, a=-0.5, b=0.5)
    assert wide.min() >= -0.5 and wide.max() <= 0.5 and wide.std() < 0.35  # the bounds truncate


# -- gradient --------------------------------------------------------------------------------------
def test_dann_ramp_values():
    assert dann_ramp(0.0) == 0.0
    assert dann_ramp(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # 0.462
    assert dann_ramp(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)  # 0.99991


def test_scale_gradient_is_the_identity_forward_and_scales_the_gradient_backward():
    x = torch.randn(3, 4, requires_grad=True)
    assert scale_gradient(x, 1.0) is x
    out = scale_gradient(x, -0.5)
    assert torch.equal(out, x)
    (out * 2).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, -1.0))


# -- import cost -----------------------------------------------------------------------------------
def test_the_layers_and_a_tubelet_vit_import_torch_alone(tmp_path):
    from test_import_cost import imports_of

    result = imports_of("""
        import anonpriv.layers
        from anonpriv.models import create_utility_model
        create_utility_model("tubelet_vit_tiny", 3)
    """, tmp_path)
    assert result["modules"] == ["torch"]
