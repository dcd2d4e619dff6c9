"""The token-pruning options the paper's setting and the tiny default switch between.

* ``privacy_cls_gradient: reversal``: the privacy CLS loss reaches the backbone through a gradient
  reversal layer whose weight follows DANN's ramp ``2 / (1 + exp(-10 p)) - 1`` of training progress:
  checked for sign and magnitude at three points of training against the plain (detector) gradient.
* ``stage_supervision``: the CLS heads' losses applied right after each pruning stage's attention.
* ``straight_through``: the hard mask's forward value with ``sigmoid(standardised score / T)``'s
  gradient, so the downstream losses reach the scores.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anonpriv.layers import dann_ramp
from anonpriv.methods.token_pruning import TokenPruningMethod
from anonpriv.methods.token_pruning.anonymizer import upsample_tubelet_mask

CLIP = [8, 16, 16]
TOTAL_STEPS = 100


class FakeTrainer:
    training = True
    estimated_stepping_batches = TOTAL_STEPS


def _method(**kwargs) -> TokenPruningMethod:
    torch.manual_seed(0)
    options = dict(num_actions=3, num_privacy=2, clip_shape=CLIP, tubelet=[2, 4, 4], embed_dim=32, depth=3,
                   num_heads=2, prune_blocks=[1, 2], keep_ratio=0.5, keep_ratio_start=0.5, stem="linear",
                   motion_channels=False, attention_map_clips=0, stage_supervision=0.0,
                   utility_model="c3d_tiny", privacy_model="frame_cnn_tiny")
    options.update(kwargs)
    method = TokenPruningMethod(**options)
    method._trainer = FakeTrainer()
    return method.train()


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    return {"video": torch.rand(2, 3, *CLIP, generator=generator), "action": torch.tensor([0, 2]),
            "privacy": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}


def _cls_gradients(method: TokenPruningMethod, step: int, term: str) -> dict[str, torch.Tensor]:
    """Gradients of one CLS loss term at training step ``step`` of ``TOTAL_STEPS``."""
    method._train_step_count = step
    method.zero_grad(set_to_none=True)
    batch = _batch()
    terms = method.extra_anonymizer_losses(batch, method.anonymizer_outputs(batch["video"]))
    terms[term].backward()
    grads = {name: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for name, p in method.vit.named_parameters()}
    return grads


# The paper's weight at the start, early (ramp 0.46) and at the end of training (ramp ~1); another
# weight once, to see it scale the reversal.
@pytest.mark.parametrize(("reversal_weight", "steps"), [(1.0, (0, 10, TOTAL_STEPS)), (0.5, (10,))])
def test_reversal_flips_and_ramps_the_privacy_gradient_into_the_backbone(reversal_weight, steps):
    detector = _method(privacy_cls_gradient="detector")
    reversal = _method(privacy_cls_gradient="reversal", reversal_weight=reversal_weight)
    for a, b in zip(detector.state_dict().values(), reversal.state_dict().values()):
        assert torch.equal(a, b)
    backbone = ["priv_cls", "act_cls", "pos_embed", "embed.proj.weight", "blocks.0.attn.qkv.weight",
                "blocks.2.mlp.fc2.weight"]
    for step in steps:
        progress = step / TOTAL_STEPS
        factor = -reversal_weight * dann_ramp(progress)
        plain = _cls_gradients(detector, step, "priv_cls")
        reversed_ = _cls_gradients(reversal, step, "priv_cls")
        assert reversal.vit.privacy_gradient_scale == pytest.approx(factor)
        assert detector.vit.privacy_gradient_scale == 1.0
        # The privacy head itself still learns to predict privacy, at full strength.
        for name in ("priv_head.weight", "priv_head.bias"):
            assert torch.allclose(reversed_[name], plain[name], atol=1e-7)
        # Everything before the head gets the plain gradient times -w * ramp(p): zero at the start,
        # the opposite sign afterwards, growing to -w.
        for name in backbone:
            assert plain[name].abs().sum() > 0, name
            scale = plain[name].abs().max()
            assert torch.allclose(reversed_[name], factor * plain[name], rtol=1e-4, atol=1e-5 * scale), (name, step)
            if step == 0:
                assert reversed_[name].abs().sum() == 0
            else:
                cosine = F.cosine_similarity(reversed_[name].flatten(), plain[name].flatten(), dim=0)
                assert cosine == pytest.approx(-1.0, abs=1e-4)
                ratio = reversed_[name].norm() / plain[name].norm()
                assert ratio == pytest.approx(reversal_weight * dann_ramp(progress), rel=1e-4)


def test_reversal_leaves_the_action_gradient_alone():
    detector = _method(privacy_cls_gradient="detector")
    reversal = _method(privacy_cls_gradient="reversal")
    plain = _cls_gradients(detector, 50, "act_cls")
    same = _cls_gradients(reversal, 50, "act_cls")
    for name in plain:
        assert torch.allclose(same[name], plain[name], atol=1e-7), name


def test_stage_supervision_adds_the_cls_losses_at_each_pruning_stage():
    batch = _batch()
    method = _method(stage_supervision=0.6, act_cls_weight=1.0, priv_cls_weight=2.0)
    out = method.anonymizer_outputs(batch["video"])
    assert len(out["stage_act_cls_logits"]) == len(out["stage_priv_cls_logits"]) == 2  # one per pruning block
    terms = method.extra_anonymizer_losses(batch, out)
    expected_act = 0.6 / 2 * sum(F.cross_entropy(a, batch["action"]) for a in out["stage_act_cls_logits"])
    expected_priv = 0.6 / 2 * 2.0 * sum(F.binary_cross_entropy_with_logits(p, batch["privacy"])
                                        for p in out["stage_priv_cls_logits"])
    assert torch.allclose(terms["stage_act_cls"], expected_act)
    assert torch.allclose(terms["stage_priv_cls"], expected_priv)
    # The stage heads read the CLS tokens right after the pruning blocks' attention: their loss
    # reaches block 1 (attention and MLP) and block 2's attention, not block 2's MLP nor block 3.
    (terms["stage_act_cls"] + terms["stage_priv_cls"]).backward()
    grads = {n: p.grad for n, p in method.vit.named_parameters()}

    def touched(prefix):
        return any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix))

    assert touched("blocks.0.attn") and touched("blocks.0.mlp") and touched("blocks.1.attn")
    assert not touched("blocks.1.mlp") and not touched("blocks.2.")
    # Off (the paper's objective, and the tiny default's): no stage terms at all.
    off = _method(stage_supervision=0.0)
    assert not {"stage_act_cls", "stage_priv_cls"} & set(off.extra_anonymizer_losses(batch, off.anonymizer_outputs(batch["video"])))


def _capture_score(method: TokenPruningMethod) -> dict:
    """Keep the (non-detached) score the anonymizer builds its mask from, with its gradient."""
    vit, captured = method.vit, {}
    original = vit.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        if out.score.requires_grad:
            out.score.retain_grad()
        captured["score"] = out.score
        return out

    vit.forward = forward
    return captured


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_straight_through_keeps_the_hard_mask_and_passes_the_sigmoid_gradient(temperature):
    video = _batch()["video"]
    method = _method(straight_through=True, mask_temperature=temperature, prune_blocks=[1])
    captured = _capture_score(method)
    out = method.anonymizer_outputs(video)
    hard = upsample_tubelet_mask(out["tubelet_mask"].float(), method.vit.embed.tubelet)
    assert torch.allclose(out["video"], video * hard, atol=1e-6)  # forward: the hard mask (hard + soft - soft)
    out["video"].sum().backward()
    score = captured["score"]
    assert score.grad is not None and score.grad.abs().sum() > 0
    # Backward: d/ds of sum(video * sigmoid(z / T)) with z the per-clip standardised score, where each
    # tubelet's upstream gradient is the sum of its pixels.
    leaf = score.detach().clone().requires_grad_(True)
    z = (leaf - leaf.mean(dim=(1, 2, 3), keepdim=True)) / leaf.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    soft = torch.sigmoid(z / temperature)
    t, p, q = method.vit.embed.tubelet
    B, C, T, H, W = video.shape
    per_tubelet = video.reshape(B, C, T // t, t, H // p, p, W // q, q).sum(dim=(1, 3, 5, 7))
    (expected,) = torch.autograd.grad((soft * per_tubelet).sum(), leaf)
    assert torch.allclose(score.grad, expected, rtol=1e-4, atol=1e-7)
    assert method.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0  # the score's own weights learn


def test_without_straight_through_or_in_eval_the_mask_passes_no_gradient():
    video = _batch()["video"]
    for method in (_method(straight_through=False, prune_blocks=[1]), _method(straight_through=True, prune_blocks=[1]).eval()):
        captured = _capture_score(method)
        out = method.anonymizer_outputs(video)
        hard = upsample_tubelet_mask(out["tubelet_mask"].float(), method.vit.embed.tubelet)
        assert torch.equal(out["video"], video * hard)
        assert not out["video"].requires_grad  # the paper's setting: top-k shapes nothing downstream
        assert captured["score"].grad is None
