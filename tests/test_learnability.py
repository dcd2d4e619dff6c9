"""The synthetic dataset's design contract: action in motion, privacy in appearance.

A tiny 3D model learns the action well above chance; a model that sees one frame cannot; a model
that sees one frame learns the private attributes well above their base rate.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.data import SyntheticSource
from anonpriv.metrics import action_top1, privacy_scores
from anonpriv.models import create_privacy_model, create_utility_model

NUM_ACTIONS = 8
CHANCE = 1 / NUM_ACTIONS


class FirstFrame(nn.Module):
    """Sees only the first frame of a clip."""

    def __init__(self, image_model: nn.Module) -> None:
        super().__init__()
        self.image_model = image_model

    def forward(self, video):
        return self.image_model(video[:, :, :1])


@pytest.fixture(scope="module")
def data():
    source = SyntheticSource(num_frames=16, height=32, width=32, num_actions=NUM_ACTIONS,
                             num_train=1024, num_val=8, num_test=384, seed=11)
    def stack(split):
        ds = source.dataset(split)
        items = [ds[i] for i in range(len(ds))]
        return (torch.stack([i["video"] for i in items]), torch.stack([i["action"] for i in items]),
                torch.stack([i["privacy"] for i in items]))
    return stack("train"), stack("test")


def _fit(model, x, y, loss_fn, epochs, lr=2e-3, batch=32):
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def _predict(model, x):
    return torch.cat([model(x[i:i + 128]) for i in range(0, len(x), 128)])


def test_3d_model_learns_the_action_but_one_frame_does_not(data):
    (xtr, atr, _), (xte, ate, _) = data
    torch.manual_seed(0)
    video_model = _fit(create_utility_model("c3d_tiny", NUM_ACTIONS), xtr, atr, F.cross_entropy, epochs=8)
    video_top1 = action_top1(_predict(video_model, xte), ate)
    torch.manual_seed(0)
    frame_model = _fit(FirstFrame(create_privacy_model("frame_cnn_tiny", NUM_ACTIONS)), xtr, atr,
                       F.cross_entropy, epochs=8)
    frame_top1 = action_top1(_predict(frame_model, xte), ate)
    print(f"action top-1: 3D {video_top1:.3f}, single frame {frame_top1:.3f}, chance {CHANCE:.3f}")
    assert video_top1 > 3 * CHANCE
    assert frame_top1 < 2 * CHANCE
    assert video_top1 > frame_top1 + 0.2


def test_one_frame_learns_the_private_attributes(data):
    (xtr, _, ptr), (xte, _, pte) = data
    torch.manual_seed(0)
    frame_model = _fit(FirstFrame(create_privacy_model("frame_cnn_tiny", 5)), xtr, ptr,
                       F.binary_cross_entropy_with_logits, epochs=6)
    scores = privacy_scores(_predict(frame_model, xte).sigmoid(), pte, SyntheticSource().privacy_names)
    base_rate = pte.mean(0)  # the AP of a random guess is the attribute's prevalence
    print(f"privacy cMAP from one frame {scores.cmap:.3f} (base rate {base_rate.mean():.3f}); {scores.per_attribute_ap}")
    assert scores.cmap > base_rate.mean() + 0.25
    for j, name in enumerate(SyntheticSource().privacy_names):
        assert scores.per_attribute_ap[name] > base_rate[j] + 0.05, name
