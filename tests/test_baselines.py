"""The defining behaviour of each baseline: blur/downsample, BDQ and SPAct.

Each test pins one property the method's design depends on, and fails if it is broken:
blur with sigma -> 0 is the identity; BDQ's difference drops a frame and zeroes a static clip; its
quantiser keeps sorted thresholds and treats each clip on its own; SPAct's UNet learns to
reconstruct in the warm-up; NT-Xent matches a value computed by hand; each training phase
changes exactly the parameters it names and no gradient leaks where it should not.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from anonpriv.baselines.bdq import BDQBaseline
from anonpriv.baselines.bdq.anonymizer import BDQEncoder, SoftQuantizer, TemporalDifference
from anonpriv.baselines.blur import BlurBaseline, DownsampleBaseline
from anonpriv.baselines.blur.anonymizer import DownUpSample, GaussianBlur
from anonpriv.baselines.spact import SPActBaseline
from anonpriv.baselines.spact.anonymizer import UNet
from anonpriv.baselines.spact.method import nt_xent_loss
from anonpriv.methods import binary_entropy_from_logits, build_method

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")

NUM_ACTIONS, NUM_PRIVACY = 8, 5


def _clip(batch: int = 2, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def _method(name: str, **kwargs):
    torch.manual_seed(0)
    return build_method(name, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY, clip_shape=[8, 32, 32], **kwargs)


def _fit_phases(method, batch: dict, phase_names: tuple[str, ...] | None = None, steps: int = 1) -> None:
    """Train ``method`` for ``steps`` steps on ``batch`` (one epoch), optionally only some phases."""
    if phase_names is not None:
        selected = [phase for phase in method.phases() if phase.name in phase_names]
        assert [p.name for p in selected] == list(phase_names)
        method.phases = lambda: selected
    items = [{key: value[i] for key, value in batch.items()} for i in range(len(batch["action"]))]
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(method, train_dataloaders=DataLoader(items * steps, batch_size=len(items), shuffle=False))


def _parameters_by_module(method) -> dict[str, dict[str, torch.Tensor]]:
    """Copies of the parameters of each top-level submodule (anonymizer, utility, privacy_model, ...)."""
    return {
        name: {key: p.detach().clone() for key, p in module.named_parameters()}
        for name, module in method.named_children()
    }


def _changed_modules(before: dict, method) -> set[str]:
    after = _parameters_by_module(method)
    return {
        name for name, params in before.items()
        if any(not torch.equal(value, after[name][key]) for key, value in params.items())
    }


# -- blur and downsample ---------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.0, 1e-4, 0.05])
def test_blur_with_vanishing_sigma_is_exactly_the_identity(sigma):
    video = _clip()
    assert torch.equal(GaussianBlur(kernel_size=13, sigma=sigma)(video), video)


def test_blur_with_one_tap_is_exactly_the_identity():
    video = _clip()
    assert torch.equal(GaussianBlur(kernel_size=1, sigma=10.0)(video), video)


def test_blur_removes_detail_but_keeps_flat_regions():
    video = _clip()
    blurred = GaussianBlur(kernel_size=5, sigma=2.0)(video)
    assert blurred.shape == video.shape
    assert blurred.std() < 0.5 * video.std()  # white noise loses most of its variance
    flat = torch.full((1, 3, 2, 16, 16), 0.3)
    torch.testing.assert_close(GaussianBlur(5, 2.0)(flat), flat)  # normalised kernel, replicated border


@pytest.mark.parametrize("kernel_size", [0, -3, 4, 2.5])
def test_blur_rejects_a_kernel_that_is_not_positive_and_odd(kernel_size):
    with pytest.raises(ValueError, match="positive odd integer"):
        GaussianBlur(kernel_size=kernel_size, sigma=1.0)


def test_blur_rejects_negative_sigma():
    with pytest.raises(ValueError, match="non-negative"):
        BlurBaseline(sigma=-1.0, num_actions=2, num_privacy=1)


def test_downsample_averages_blocks_and_factor_one_is_identity():
    video = _clip()
    assert torch.equal(DownUpSample(factor=1)(video), video)
    out = DownUpSample(factor=2, down_mode="area", up_mode="nearest")(video)
    assert out.shape == video.shape
    block_mean = video.unfold(3, 2, 2).unfold(4, 2, 2).mean(dim=(-1, -2))  # (B, C, T, 16, 16)
    torch.testing.assert_close(out[..., ::2, ::2], block_mean)
    assert torch.equal(out[..., ::2, ::2], out[..., 1::2, 1::2])  # each 2 x 2 block is one value


def test_downsample_rejects_factor_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        DownsampleBaseline(factor=0.5, num_actions=2, num_privacy=1)


@pytest.mark.parametrize("name", ["blur", "downsample"])
def test_training_free_baselines_train_only_the_downstream_models(name):
    method = _method(name)
    assert list(method.anonymizer.parameters()) == []
    batch = {"video": _clip(4), "action": torch.arange(4), "privacy": torch.randint(0, 2, (4, NUM_PRIVACY))}
    before = _parameters_by_module(method)
    _fit_phases(method, batch, ("anonymizer",))
    assert _changed_modules(before, method) == {"utility"}


# -- BDQ -------------------------------------------------------------------------------------------
def test_difference_drops_one_frame_and_zeroes_a_static_clip():
    static = _clip(frames=1).expand(-1, -1, 6, -1, -1)
    out = TemporalDifference()(static)
    assert out.shape == (2, 3, 5, 32, 32)
    assert torch.equal(out, torch.zeros_like(out))
    moving = _clip(frames=6)
    torch.testing.assert_close(TemporalDifference()(moving)[:, :, 2], moving[:, :, 3] - moving[:, :, 2])


def test_difference_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        TemporalDifference()(_clip(frames=1))


def test_bdq_encoder_output_is_one_frame_shorter_and_in_unit_range():
    out = BDQEncoder()(_clip(frames=8))
    assert out.shape == (2, 3, 7, 32, 32)
    assert out.min() >= 0 and out.max() <= 1


def test_quantizer_thresholds_start_evenly_spaced_and_stay_sorted_under_training():
    quantizer = SoftQuantizer(num_thresholds=15)
    torch.testing.assert_close(quantizer.thresholds.detach(), torch.arange(15) + 0.5)
    optimizer = torch.optim.Adam(quantizer.parameters(), lr=0.2)
    target = torch.linspace(20.0, -5.0, 15)  # pulls the thresholds into reversed order
    for _ in range(50):
        loss = ((quantizer.thresholds - target) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    thresholds = quantizer.thresholds.detach()
    assert not torch.allclose(thresholds, torch.arange(15) + 0.5)  # they did move
    assert (thresholds[1:] >= thresholds[:-1]).all(), thresholds


def test_quantizer_output_does_not_depend_on_the_rest_of_the_batch():
    quantizer = SoftQuantizer()
    clips = _clip(batch=3) * 2 - 1
    alone = quantizer(clips[:1])
    assert torch.equal(quantizer(clips)[:1], alone)
    rescaled_others = torch.cat([clips[:1], 50 * clips[1:]])  # other clips with a much wider range
    assert torch.equal(quantizer(rescaled_others)[:1], alone)


def test_quantizer_is_a_soft_staircase_over_each_clip_range():
    quantizer = SoftQuantizer(num_thresholds=15, slope=60.0)  # steep: close to hard rounding
    ramp = torch.linspace(-1, 1, 31).view(1, 1, 1, 1, 31)  # scales to 0, 0.5, ..., 15
    out = quantizer(ramp).flatten() * 15
    whole = torch.arange(0, 31, 2)  # values 0, 1, ..., 15: far from every threshold
    torch.testing.assert_close(out[whole], torch.arange(16.0), atol=1e-6, rtol=0)


def test_bdq_gradients_reach_sigma_and_thresholds():
    encoder = BDQEncoder()
    encoder(_clip(frames=4)).pow(2).mean().backward()
    assert encoder.blur.sigma.grad is not None and encoder.blur.sigma.grad.abs() > 0
    assert encoder.quantizer.raw_gaps.grad.abs().sum() > 0 and encoder.quantizer.first_threshold.grad.abs() > 0


def test_bdq_anonymizer_loss_is_action_ce_minus_twice_the_privacy_entropy():
    method = _method("bdq")
    batch = {"video": _clip(4), "action": torch.arange(4), "privacy": torch.randint(0, 2, (4, NUM_PRIVACY))}
    method.eval()  # no dropout or batch statistics, so the terms can be recomputed exactly
    with torch.no_grad():
        terms = method.anonymizer_losses(batch, {})
        video = method.anonymize(batch["video"])
        entropy = binary_entropy_from_logits(method.privacy_model(video))
    assert set(terms) == {"action", "privacy_adversarial"}
    torch.testing.assert_close(terms["privacy_adversarial"], -2.0 * entropy)


def test_bdq_rejects_one_frame_clips():
    with pytest.raises(ValueError, match="at least 2 frames"):
        BDQBaseline(num_actions=2, num_privacy=1, clip_shape=[1, 32, 32])


# -- SPAct -----------------------------------------------------------------------------------------
def test_nt_xent_matches_a_hand_computed_value():
    # Views: a1 = (1, 0), a2 = (0, 1); b1 = (3, 4) ~ (0.6, 0.8), b2 = (8, 6) ~ (0.8, 0.6) after
    # normalisation. Cosines: a1.a2 = 0, a1.b1 = .6, a1.b2 = .8, a2.b1 = .8, a2.b2 = .6, b1.b2 = .96.
    # Anchor a1 (positive b1): -log(e^{.6/t} / (e^0 + e^{.6/t} + e^{.8/t})); a2 mirrors it.
    # Anchor b1 (positive a1): -log(e^{.6/t} / (e^{.6/t} + e^{.8/t} + e^{.96/t})); b2 mirrors it.
    # With t = 0.5: 1.0271231 and 1.5143045, mean 1.2707138; with t = 0.1: 2.1272234, 3.8063800.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 4.0], [8.0, 6.0]])
    torch.testing.assert_close(nt_xent_loss(z1, z2, temperature=0.5), torch.tensor(1.2707138))
    torch.testing.assert_close(nt_xent_loss(z1, z2, temperature=0.1), torch.tensor((2.1272234 + 3.8063800) / 2))


def test_nt_xent_rewards_matching_views():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    matched = nt_xent_loss(z, z + 0.01 * torch.randn(8, 16))
    shuffled = nt_xent_loss(z, z[torch.roll(torch.arange(8), 1)])
    assert matched < shuffled


def test_unet_output_is_in_unit_range_for_any_frame_size():
    out = UNet(width=4, depth=2)(torch.rand(3, 3, 20, 28))
    assert out.shape == (3, 3, 20, 28) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="too small"):
        UNet(width=4, depth=3)(torch.rand(1, 3, 4, 4))


def test_spact_unet_reconstructs_its_input_after_the_warmup(tiny_batch):
    method = _method("spact", reconstruction_epochs=10, unet_width=8, lr=3e-3, schedule="constant")
    video = tiny_batch["video"]

    def reconstruction_error() -> float:
        method.eval()
        with torch.no_grad():
            error = float((method.anonymize(video) - video).abs().mean())
        method.train()
        return error

    initial = reconstruction_error()
    _fit_phases(method, tiny_batch, steps=60)  # every phase, all inside the warm-up epoch
    final = reconstruction_error()
    assert final < 0.05 and final < 0.4 * initial, (initial, final)


def test_spact_warmup_trains_the_anonymizer_on_reconstruction_only():
    batch = {"video": _clip(4), "action": torch.arange(4)}
    assert set(_method("spact", reconstruction_epochs=1).anonymizer_step_losses(batch, {})) == {"reconstruction"}
    minimax = _method("spact", reconstruction_epochs=0).anonymizer_step_losses(batch, {})
    assert set(minimax) == {"action", "privacy_ssl"}
    assert minimax["privacy_ssl"] < 0  # the anonymizer maximises the contrastive loss


def test_spact_anonymizer_and_ssl_branch_use_no_privacy_labels():
    method = _method("spact", reconstruction_epochs=0)
    batch = {"video": _clip(4), "action": torch.arange(4)}  # no "privacy" key: using it would fail
    state: dict = {}
    for phase in method.phases():
        if phase.name != "privacy_model":
            assert all(torch.isfinite(v) for v in phase.loss(batch, state).values()), phase.name


def test_spact_rejects_a_labelled_adversary():
    with pytest.raises(ValueError, match="ssl_weight"):
        SPActBaseline(num_actions=2, num_privacy=1, adversarial_loss="entropy", adversarial_weight=1.0)


# -- gradients flow only where each step says -------------------------------------------------------
PHASE_CASES = [
    ("bdq", {}, "anonymizer", {"anonymizer", "utility"}),
    ("bdq", {}, "privacy_model", {"privacy_model"}),
    ("spact", {"reconstruction_epochs": 1}, "anonymizer", {"anonymizer"}),
    ("spact", {"reconstruction_epochs": 0}, "anonymizer", {"anonymizer"}),
    ("spact", {"reconstruction_epochs": 0}, "utility", {"utility"}),
    ("spact", {"reconstruction_epochs": 0}, "privacy_ssl", {"privacy_ssl"}),
    ("spact", {"reconstruction_epochs": 0}, "privacy_model", {"privacy_model"}),
]


@pytest.mark.parametrize(("name", "kwargs", "phase", "expected"), PHASE_CASES,
                         ids=[f"{n}-{p}-{'warmup' if k.get('reconstruction_epochs') else 'minimax'}"
                              for n, k, p, _ in PHASE_CASES])
def test_each_phase_updates_exactly_its_own_modules(name, kwargs, phase, expected):
    method = _method(name, **kwargs)
    batch = {"video": _clip(4), "action": torch.arange(4), "privacy": torch.randint(0, 2, (4, NUM_PRIVACY))}
    before = _parameters_by_module(method)
    _fit_phases(method, batch, (phase,))
    assert _changed_modules(before, method) == expected


@pytest.mark.parametrize("name", ["bdq", "spact"])
def test_privacy_model_loss_sends_no_gradient_to_the_anonymizer(name):
    method = _method(name, **({"reconstruction_epochs": 0} if name == "spact" else {}))
    batch = {"video": _clip(4), "action": torch.arange(4), "privacy": torch.randint(0, 2, (4, NUM_PRIVACY))}
    privacy_phase = next(p for p in method.phases() if p.name == "privacy_model")
    sum(privacy_phase.loss(batch, {}).values()).backward()
    assert all(p.grad is None for p in method.anonymizer.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.privacy_model.parameters())


def test_spact_contrastive_term_reaches_the_anonymizer_but_not_the_privacy_model():
    method = _method("spact", reconstruction_epochs=0)
    batch = {"video": _clip(4), "action": torch.arange(4)}
    method.anonymizer_step_losses(batch, {})["privacy_ssl"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.anonymizer.parameters())
    assert all(p.grad is None for p in method.privacy_model.parameters())
    assert all(p.grad is None for p in method.utility.parameters())


def test_spact_ssl_phase_is_detached_from_the_anonymizer():
    method = _method("spact", reconstruction_epochs=0)
    batch = {"video": _clip(4), "action": torch.arange(4)}
    for name in ("utility", "privacy_ssl"):
        phase = next(p for p in method.phases() if p.name == name)
        sum(phase.loss(batch, {}).values()).backward()
        assert all(p.grad is None for p in method.anonymizer.parameters()), name


def test_every_phase_runs_in_a_full_training_step():
    method = _method("spact", reconstruction_epochs=0)
    batch = {"video": _clip(4), "action": torch.arange(4), "privacy": torch.randint(0, 2, (4, NUM_PRIVACY))}
    before = _parameters_by_module(method)
    _fit_phases(method, batch)
    assert _changed_modules(before, method) == {"anonymizer", "utility", "privacy_ssl", "privacy_model"}

