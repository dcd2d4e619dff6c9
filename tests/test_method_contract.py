"""The contract every registered method keeps, checked for each name in the method catalog.

A method registered later (token pruning, ...) is picked up automatically. Each is built with
``build_method(name, num_actions=4, num_privacy=5, clip_shape=[8, 32, 32])`` and run on small random
clips (B, 3, 8, 32, 32), anonymized as training and evaluation do, from the whole batch
(``batch_anonymizer_outputs``). The batch carries a ``person_region`` mask as the synthetic source's
batches do with ``with_regions``: blackening reads it, so it needs no person detector (whose weights
are not available offline; its detector path is tested in tests/test_blackening.py), and the other
methods ignore it:

* the anonymized clip is a float tensor with the batch's size and 3 channels (T may shrink);
* the same seed builds the same method, which gives the same output;
* training steps on a fixed batch lower the loss of the method's first phase;
* a checkpoint written by the Trainer loads back (``load_method``) as the same class with the
  same outputs.
"""

from __future__ import annotations

import dataclasses

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from anonpriv.methods import CATALOG, build_method, load_method

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")

NUM_ACTIONS, NUM_PRIVACY, CLIP_SHAPE, BATCH = 4, 5, [8, 32, 32], 4


def _build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_method(name, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY, clip_shape=list(CLIP_SHAPE))


@pytest.fixture(scope="module")
def batch() -> dict:
    generator = torch.Generator().manual_seed(123)
    return {
        "video": torch.rand(BATCH, 3, *CLIP_SHAPE, generator=generator),
        "action": torch.arange(BATCH) % NUM_ACTIONS,
        "privacy": torch.randint(0, 2, (BATCH, NUM_PRIVACY), generator=generator),
        "id": [f"clip_{i}" for i in range(BATCH)],
        "person_region": _person_region(),
    }


def _person_region() -> torch.Tensor:
    """A figure-like mask (B, T, H, W) that moves one pixel right every frame."""
    region = torch.zeros(BATCH, *CLIP_SHAPE, dtype=torch.bool)
    for t in range(CLIP_SHAPE[0]):
        region[:, t, 6:26, 4 + t:12 + t] = True
    return region


def _fixed_batch_loader(batch: dict, repeats: int) -> DataLoader:
    """A loader whose one epoch yields ``batch`` ``repeats`` times."""
    items = [{key: value[i] for key, value in batch.items()} for i in range(BATCH)]
    return DataLoader(items * repeats, batch_size=BATCH, shuffle=False)


def _fit(method, batch: dict, steps: int) -> pl.Trainer:
    """``steps`` training steps of ``method`` on ``batch`` in one epoch of a real Trainer.

    Methods use manual optimisation, so they need a Trainer attached; one epoch keeps methods whose
    losses change with the epoch (SPAct's warm-up) on one loss.
    """
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(method, train_dataloaders=_fixed_batch_loader(batch, steps))
    return trainer


@torch.no_grad()
def _outputs(method, batch: dict) -> dict[str, torch.Tensor]:
    method.eval()
    return {"video": method.batch_anonymizer_outputs(batch)["video"], **method.evaluation_outputs(batch)}


def test_every_baseline_is_registered():
    assert {"raw", "blur", "downsample", "bdq", "spact"} <= set(CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_output_is_a_float_clip_with_batch_and_channels(name, batch):
    outputs = _outputs(_build(name), batch)
    video = outputs["video"]
    assert video.dtype == torch.float32 and video.dim() == 5
    assert video.shape[0] == BATCH and video.shape[1] == 3
    assert 1 <= video.shape[2] <= CLIP_SHAPE[0] and tuple(video.shape[3:]) == tuple(CLIP_SHAPE[1:])
    assert torch.isfinite(video).all()
    assert outputs["action_logits"].shape == (BATCH, NUM_ACTIONS)
    assert outputs["privacy_logits"].shape == (BATCH, NUM_PRIVACY)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_same_seed_gives_the_same_method_and_output(name, batch):
    first, second = _build(name, seed=7), _build(name, seed=7)
    for (key, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), key
    out_first, out_second = _outputs(first, batch), _outputs(second, batch)
    for key in out_first:
        assert torch.equal(out_first[key], out_second[key]), key
    assert torch.equal(_outputs(first, batch)["video"], out_first["video"])  # no randomness at inference


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_training_steps_lower_the_first_phase_loss(name, batch):
    method = _build(name)
    first = method.phases()[0]
    losses: list[float] = []

    def recorded(batch_, state):
        terms = first.loss(batch_, state)
        losses.append(float(sum(terms.values()).detach()))
        return terms

    only_first = [dataclasses.replace(first, loss=recorded)]
    method.phases = lambda: only_first  # train the first phase alone: a pure descent on its loss
    torch.manual_seed(0)
    _fit(method, batch, steps=8)
    assert len(losses) == 8
    assert losses[-1] < losses[0], f"{name}: first-phase ({first.name}) losses {losses}"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_checkpoint_round_trip(name, batch, tmp_path):
    method = _build(name)
    torch.manual_seed(0)
    trainer = _fit(method, batch, steps=1)  # every phase once, so optimizer states exist too
    path = tmp_path / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_method(path)
    assert type(loaded) is type(method)
    expected, got = _outputs(method, batch), _outputs(loaded, batch)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=f"{name}: {key}")
