"""Learning test of the headline method: from the shipped pretrained backbone, a short fine-tune
keeps the moving limbs and drops the private head and torso (issue 11's criterion, one seed).

The full measurement over seeds and variants is ``benchmarks/token_pruning_localization.py``.
"""

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.token_pruning_localization import MARGIN, fit_and_measure  # noqa: E402


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_fine_tuned_from_the_shipped_backbone_it_keeps_the_action_and_drops_the_private_region():
    overlap, heads = fit_and_measure(seed=0, epochs=1, num_train=128, num_val=64)
    # The CLS heads that score the tubelets know their tasks (chance: 0.125 top-1, ~0.5 cMAP) ...
    assert heads.action_top1 > 0.5, heads
    assert heads.privacy_cmap > 0.7, heads
    # ... and the kept mask covers the moving limbs far more than the head and torso.
    assert overlap.margin >= MARGIN, overlap
    assert overlap.action > overlap.kept, overlap


def test_from_scratch_the_same_fit_does_not_localize():
    """The control: without the pretrained start the same short fit leaves the CLS heads near chance
    and the kept mask far from the criterion, so the test above measures the pretraining."""
    overlap, heads = fit_and_measure(seed=0, epochs=1, num_train=128, num_val=64, pretrained_file=None)
    assert heads.action_top1 < 0.3, heads
    assert overlap.margin < MARGIN - 0.1, overlap
