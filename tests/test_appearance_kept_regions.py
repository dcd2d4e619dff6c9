"""benchmarks/appearance_kept_regions.py: the kept shares per region, against hand-made masks and regions."""

import torch
from test_token_pruning_localization import KeepLeftHalf  # stands in for a method: keeps the left half

from benchmarks.appearance_kept_regions import kept_shares


def _regions(columns, clips=2, size=4):
    region = torch.zeros(clips, 2, size, size, dtype=torch.bool)
    for clip, cols in enumerate(columns):
        region[clip, ..., cols] = True
    return region


def test_shares_by_hand():
    # 4 x 4 frames, left half (columns 0, 1) kept. Clip 0's object in column 0 (kept), clip 1's in column 3.
    obj = _regions([[0], [3]])
    moving = obj | _regions([[1, 2], [1, 2]])  # the moving region holds the object; without it columns 1, 2
    private = _regions([[0, 1, 3], [0, 1, 3]])  # minus the moving pixels: clip 0 column 3, clip 1 column 0
    batch = {"video": torch.rand(2, 3, 2, 4, 4), "object_region": obj, "action_region": moving, "privacy_region": private}
    shares = kept_shares(KeepLeftHalf(), [batch])
    assert shares["object"] == 0.5  # all of clip 0's object, none of clip 1's
    assert shares["moving, not the object"] == 0.5  # column 1 of 1, 2
    assert shares["private, still"] == 0.5  # clip 0: column 3 (dropped); clip 1: column 0 (kept)
    assert shares["clips with > half the object"] == 0.5
