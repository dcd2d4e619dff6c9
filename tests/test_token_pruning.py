"""Unit tests of the headline method: score, top-k, fusion, keep ratios, gradients, maps."""

import numpy as np
import pytest
import torch

from anonpriv.methods.token_pruning import DualCLSTubeletViT, TokenPruningMethod
from anonpriv.methods.token_pruning.anonymizer import upsample_tubelet_mask
from anonpriv.methods.token_pruning.scoring import (
    cls_to_patch_attention,
    keep_count,
    kept_tubelet_mask,
    prune_and_fuse,
    utility_privacy_score,
)

CLIP = (8, 16, 16)


def _vit(**kwargs):
    torch.manual_seed(0)
    defaults = dict(clip_shape=CLIP, num_actions=3, num_privacy=2, tubelet=(2, 4, 4), embed_dim=32, depth=3,
                    num_heads=2, prune_blocks=(1, 2), keep_ratio=0.5)
    defaults.update(kwargs)
    return DualCLSTubeletViT(**defaults)


def test_score_topk_and_fusion_match_a_hand_computed_example():
    # Two CLS rows over [cls, cls, t0, t1, t2, t3]; renormalised over the four patch tokens.
    rows = torch.tensor([[[0.1, 0.1, 0.4, 0.1, 0.2, 0.1],    # act_cls
                          [0.2, 0.0, 0.1, 0.1, 0.5, 0.1]]])  # priv_cls
    a_act, a_priv = cls_to_patch_attention(rows)
    assert torch.allclose(a_act, torch.tensor([[0.5, 0.125, 0.25, 0.125]]))
    assert torch.allclose(a_priv, torch.tensor([[0.125, 0.125, 0.625, 0.125]]))
    score = utility_privacy_score(a_act, a_priv, lambda_priv=0.5)
    # s = a_act - 0.5 a_priv = [0.4375, 0.0625, -0.0625, 0.0625]
    assert torch.allclose(score, torch.tensor([[0.4375, 0.0625, -0.0625, 0.0625]]))
    x = torch.arange(6 * 2, dtype=torch.float32).view(1, 6, 2)  # tokens, D = 2
    ids = torch.tensor([[10, 11, 12, 13]])
    # Keep 2: t0 (0.4375) and the first of the tied t1/t3 is decided by topk; use a tie-free score.
    score = torch.tensor([[0.4375, 0.0625, -0.0625, 0.07]])
    new_x, new_ids, kept = prune_and_fuse(x, ids, score, a_act, keep=2)
    assert kept.tolist() == [[0, 3]]
    assert new_ids.tolist() == [[10, 13, -1]]
    assert torch.equal(new_x[:, :2], x[:, :2])  # CLS tokens untouched
    assert torch.equal(new_x[:, 2], x[:, 2]) and torch.equal(new_x[:, 3], x[:, 5])
    fused = 0.125 * x[0, 3] + 0.25 * x[0, 4]  # sum of a_act_j x_j over pruned t1, t2 (not renormalised)
    assert torch.allclose(new_x[0, 4], fused)


def test_keep_count_reproduces_the_papers_token_arithmetic():
    # ViT-B/16 on 16 x 224 x 224 with 2 x 16 x 16 tubelets: 1568 -> 1412+1 -> 1272+1 -> 1146+1.
    counts, present = [], 1568
    for _ in range(3):
        kept = keep_count(present, 0.9)
        counts.append(kept)
        present = kept + 1
    assert counts == [1412, 1272, 1146]


def test_fusion_preserves_the_token_count_arithmetic():
    vit = _vit(keep_ratio=0.5)
    out = vit(torch.rand(2, 3, *CLIP))
    n = vit.num_tubelets  # 4 * 4 * 4 = 64
    schedule = vit.kept_count_schedule()
    assert schedule == [32, keep_count(33, 0.5)]  # the fused token joins the candidates of stage 2
    assert out.tokens.shape == (2, schedule[-1] + 1, 32)
    assert out.token_ids.shape == (2, schedule[-1] + 1) and (out.token_ids[:, -1] == -1).all()
    kept_tubelets = (out.token_ids >= 0).sum(1)
    assert torch.equal(out.tubelet_mask.view(2, n).sum(1), kept_tubelets)
    assert n == 64


def test_keep_ratio_one_keeps_every_tubelet():
    vit = _vit(keep_ratio=1.0)
    out = vit(torch.rand(2, 3, *CLIP))
    assert out.tubelet_mask.all()
    assert out.tokens.shape[1] == vit.num_tubelets and (out.token_ids >= 0).all()


@pytest.mark.parametrize("ratio", [0.0, -0.2, 1.5, float("nan")])
def test_impossible_keep_ratio_gets_a_clear_error(ratio):
    with pytest.raises(ValueError, match="keep_ratio"):
        _vit(keep_ratio=ratio)
    with pytest.raises(ValueError, match=r"choose a value in \(0, 1\]"):
        TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=list(CLIP), keep_ratio=ratio)


def test_bad_tubelet_and_prune_blocks_are_rejected():
    with pytest.raises(ValueError, match="must divide the clip"):
        _vit(tubelet=(3, 4, 4))
    with pytest.raises(ValueError, match="prune_blocks"):
        _vit(prune_blocks=(7,))


def test_gradient_reaches_both_cls_tokens_and_reversal_flips_the_backbone_gradient():
    x = torch.rand(2, 3, *CLIP)
    vit = _vit()
    out = vit(x)
    out.action_logits.sum().backward()
    assert vit.act_cls.grad is not None and vit.act_cls.grad.abs().sum() > 0
    vit.zero_grad()
    out = vit(x)
    out.privacy_logits.sum().backward()
    assert vit.priv_cls.grad.abs().sum() > 0
    detector_backbone = vit.priv_cls.grad.clone()
    detector_head = vit.priv_head.weight.grad.clone()
    vit.zero_grad()
    vit.privacy_gradient_scale = -1.0  # gradient reversal
    vit(x).privacy_logits.sum().backward()
    assert torch.allclose(vit.priv_head.weight.grad, detector_head)  # the head still learns privacy
    assert torch.allclose(vit.priv_cls.grad, -detector_backbone, atol=1e-7)  # the backbone is pushed away


def test_kept_mask_is_temporally_consistent_within_each_tube():
    vit = _vit()
    out = vit(torch.rand(2, 3, *CLIP))
    pixel = upsample_tubelet_mask(out.tubelet_mask.float(), vit.embed.tubelet)
    assert pixel.shape == (2, 1, *CLIP)
    assert torch.equal(pixel[:, :, 0::2], pixel[:, :, 1::2])  # both frames of each 2-frame tube agree
    assert kept_tubelet_mask(torch.tensor([[3, -1, 0]]), 5).tolist() == [[True, False, False, True, False]]


def test_method_outputs_masked_clip_and_token_set():
    method = TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=list(CLIP), embed_dim=32, depth=2,
                                prune_blocks=[2], num_heads=2, keep_ratio=0.5).eval()
    video = torch.rand(2, 3, *CLIP)
    out = method.anonymizer_outputs(video)
    assert out["video"].shape == video.shape
    pruned = out["mask"] == 0
    assert pruned.any() and (out["video"][pruned.expand_as(video)] == 0).all()
    kept = ~pruned.expand_as(video)
    assert torch.equal(out["video"][kept], video[kept])
    assert out["tokens"].shape[:2] == out["token_ids"].shape


def test_keep_ratio_anneals_during_training():
    method = TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=list(CLIP), keep_ratio=0.5,
                                keep_ratio_start=1.0, anneal=[0.2, 0.6])

    class FakeTrainer:
        training = True
        estimated_stepping_batches = 100

    method._trainer = FakeTrainer()
    seen = []
    for step in (0, 20, 40, 60, 90):
        method._train_step_count = step
        seen.append(method.current_keep_ratio())
    assert seen == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.5])
    method.eval()
    assert method.current_keep_ratio() == 0.5


def test_pretrained_2d_vit_weights_load_and_inflate(tmp_path):
    import timm

    torch.manual_seed(0)
    vit2d = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=16, patch_size=4,
                              embed_dim=32, depth=3, num_heads=2)
    path = tmp_path / "vit2d.pth"
    torch.save(vit2d.state_dict(), path)
    model = _vit(stem="linear", motion_channels=True)
    report = model.load_pretrained_vit(path, "vit_tiny_patch16_224")
    assert report["blocks"] == 3
    for ours, theirs in zip(model.blocks.state_dict().values(), vit2d.blocks.state_dict().values()):
        assert torch.equal(ours, theirs)
    kernel = model.embed.proj.weight  # (D, 6, 2, 4, 4): RGB kernels, then motion kernels at zero
    assert torch.allclose(kernel[:, :3].sum(2), vit2d.patch_embed.proj.weight, atol=1e-6)
    assert (kernel[:, 3:] == 0).all()
    per_slot = model.pos_embed.view(1, 4, 16, 32)
    assert torch.equal(per_slot[:, 0], per_slot[:, 3])  # spatial embeddings repeated over time
    assert torch.allclose(per_slot[0, 0], vit2d.pos_embed[0, 1:])
    assert torch.allclose(model.act_cls, vit2d.cls_token + vit2d.pos_embed[:, :1])
    assert torch.equal(model.act_cls, model.priv_cls)
    # A 2D model loaded this way sees a static clip as its 2D original sees the frame.
    frame = torch.rand(1, 3, 16, 16)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    tokens = model.embed.proj(torch.cat([(clip - 0.5) / 0.25, torch.zeros_like(clip)], 1)).flatten(2).transpose(1, 2)
    assert torch.allclose(tokens[:, :16], vit2d.patch_embed.proj((frame - 0.5) / 0.25).flatten(2).transpose(1, 2),
                          atol=1e-5)


def test_pretrained_weights_need_the_linear_stem_and_an_existing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        _vit(stem="linear").load_pretrained_vit(tmp_path / "missing.pth")
    import timm

    path = tmp_path / "vit2d.pth"
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=16, patch_size=4,
                                 embed_dim=32, depth=3, num_heads=2).state_dict(), path)
    with pytest.raises(ValueError, match="stem='linear'"):
        _vit(stem="conv").load_pretrained_vit(path, "vit_tiny_patch16_224")


def test_attention_map_callback_writes_image_events(tmp_path):
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from anonpriv.data import SyntheticSource, VideoPrivacyDataModule

    dm = VideoPrivacyDataModule(SyntheticSource(num_frames=8, height=16, width=16, num_train=8, num_val=4,
                                                num_test=4), batch_size=4)
    method = TokenPruningMethod(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape,
                                embed_dim=32, depth=2, prune_blocks=[2], num_heads=2, attention_map_clips=2)
    logger = TensorBoardLogger(str(tmp_path), name="tp")
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=logger,
                         enable_checkpointing=False, enable_progress_bar=False, num_sanity_val_steps=0)
    trainer.fit(method, dm)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {"attention/clip_0", "attention/clip_1"}
    image = events.Images("attention/clip_0")[-1]
    # 5 rows (raw, a_act, a_priv, score, anonymized) of 6 frames, each drawn at least 4x its 16 px.
    assert image.height >= 5 * 4 * 16 and image.width >= 6 * 4 * 16, (image.height, image.width)


def test_attention_figure_labels_rows_upscales_and_outlines_the_kept_tubelets():
    from anonpriv.methods.token_pruning.visualize import attention_figure

    torch.manual_seed(0)
    method = TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=[8, 32, 32], embed_dim=32, depth=2,
                                num_heads=2, prune_blocks=[2], keep_ratio=0.5, attention_map_clips=0).eval()
    video = torch.rand(1, 1, 8, 32, 32).expand(1, 3, 8, 32, 32)  # grey: no green but the outline
    with torch.no_grad():
        out = method.anonymizer_outputs(video)
    per_clip = {k: v[0] for k, v in out.items() if isinstance(v, torch.Tensor) and len(v) == 1}
    image = attention_figure(video[0], per_clip, num_frames=4, scale=4)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[0] >= 5 * 4 * 32 and image.shape[1] >= 4 * 4 * 32
    # The kept-tubelet outline is drawn in lime: pure-green-dominant pixels appear only with it.
    lime = (image[..., 1] > 200) & (image[..., 0] < 120) & (image[..., 2] < 120)
    assert lime.sum() > 100
    without_mask = {k: v for k, v in per_clip.items() if k != "mask"}
    no_outline = attention_figure(video[0], without_mask, num_frames=4, scale=4)
    assert ((no_outline[..., 1] > 200) & (no_outline[..., 0] < 120) & (no_outline[..., 2] < 120)).sum() < lime.sum() / 10
