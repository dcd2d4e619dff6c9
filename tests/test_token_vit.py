"""The tubelet ViT downstream: a normal utility model on clips, and a pruned path on tubelet ids.
(The tubelet ops it is built on: tests/test_layers.py.)"""

from __future__ import annotations

import pytest
import torch

from anonpriv.layers import kept_tubelet_ids
from anonpriv.methods.registry import build_method
from anonpriv.models import create_utility_model, list_utility_models
from anonpriv.models.token_vit import TubeletViT


@pytest.fixture
def vit() -> TubeletViT:
    torch.manual_seed(0)
    return TubeletViT(5, clip_shape=(8, 16, 16), tubelet=(2, 4, 4), embed_dim=32, depth=2, num_heads=2).eval()


def test_registered_and_buildable_by_name():
    assert "tubelet_vit_tiny" in list_utility_models()
    model = create_utility_model("tubelet_vit_tiny", 6, {"clip_shape": [16, 112, 112], "tubelet": [2, 14, 14]})
    assert isinstance(model, TubeletViT) and model.grid == (8, 8, 8)
    assert model(torch.rand(1, 3, 16, 112, 112)).shape == (1, 6)


def test_all_ids_equal_the_full_clip_forward(vit):
    video = torch.rand(3, 3, 8, 16, 16)
    every = torch.arange(vit.num_tubelets).expand(3, -1)
    with torch.no_grad():
        torch.testing.assert_close(vit.forward_tubelets(video, every), vit(video), rtol=0, atol=1e-6)


def test_pruned_path_shapes_and_that_only_kept_tubelets_matter(vit):
    video = torch.rand(2, 3, 8, 16, 16)
    ids = torch.stack([torch.randperm(vit.num_tubelets)[:10].sort().values for _ in range(2)])
    other = video.clone()
    keep = torch.zeros(2, vit.num_tubelets, dtype=torch.bool).scatter_(1, ids, True).view(2, 4, 4, 4)
    pixel_keep = keep.repeat_interleave(2, 1).repeat_interleave(4, 2).repeat_interleave(4, 3)[:, None]
    other[~pixel_keep.expand_as(other)] = 0.0  # pruned tubelets blacked out, like token pruning's mask
    with torch.no_grad():
        assert vit.embed_tubelets(video, ids).shape == (2, 10, 32)
        logits = vit.forward_tubelets(video, ids)
        assert logits.shape == (2, 5)
        torch.testing.assert_close(vit.forward_tubelets(other, ids), logits)
        assert not torch.allclose(vit(other), vit(video))  # the full path does see the pruned pixels


def test_padded_ids_give_each_clip_its_own_result(vit):
    video = torch.rand(2, 3, 8, 16, 16)
    mask = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    mask.view(2, -1)[0, :20] = True
    mask.view(2, -1)[1, 5:12] = True
    ids = kept_tubelet_ids(mask)
    assert ids.shape == (2, 20)
    assert ids[1, :7].tolist() == list(range(5, 12)) and (ids[1, 7:] == -1).all()
    with torch.no_grad():
        together = vit.forward_tubelets(video, ids)
        alone = torch.cat([vit.forward_tubelets(video[i:i + 1], kept_tubelet_ids(mask[i:i + 1])) for i in range(2)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_other_clip_sizes_resample_the_position_embeddings(vit):
    with torch.no_grad():
        assert vit(torch.rand(1, 3, 4, 24, 16)).shape == (1, 5)
    with pytest.raises(ValueError, match="must divide"):
        vit(torch.rand(1, 3, 8, 18, 16))
    with pytest.raises(ValueError, match="same tubelet grid"):
        vit.forward_tubelets(torch.rand(1, 3, 8, 16, 16), torch.tensor([[64]]))


def test_selectable_as_a_method_utility_model_and_fed_token_pruning_ids(tiny_batch):
    torch.manual_seed(0)
    method = build_method("token_pruning", num_actions=8, num_privacy=5, clip_shape=[8, 32, 32],
                          utility_model="tubelet_vit_tiny",
                          utility_kwargs={"clip_shape": [8, 32, 32], "tubelet": [4, 8, 8], "embed_dim": 48,
                                          "num_heads": 3, "depth": 1})  # the anonymizer's tubelet grid
    losses = method.anonymizer_losses(tiny_batch, {})
    losses["action"].backward()
    assert method.utility.embed.weight.grad is not None
    method.eval()
    with torch.no_grad():
        out = method.anonymizer_outputs(tiny_batch["video"])
        ids = kept_tubelet_ids(out["tubelet_mask"])
        pruned = method.utility.forward_tubelets(tiny_batch["video"], ids)
        # the kept tubelets of the masked clip are the raw pixels, so both inputs agree
        torch.testing.assert_close(method.utility.forward_tubelets(out["video"], ids), pruned)
    assert pruned.shape == (len(tiny_batch["video"]), 8)


def test_tubelet_vit_keeps_the_weights_and_outputs_it_had_with_timm_blocks(monkeypatch):
    # The action model was built from timm blocks before its torch-only ViTBlock existed: a seed gives
    # the same initial weights and the same outputs (full clip and a padded tubelet subset) as it did then.
    from timm.models.vision_transformer import Block

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
