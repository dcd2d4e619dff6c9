import numpy as np
import pytest
import torch

from anonpriv.data.synthetic import ACTION_NAMES, PRIVACY_ATTRIBUTES, SyntheticClipGenerator


def test_same_seed_same_clip_and_other_index_differs():
    a = SyntheticClipGenerator(num_frames=8, seed=3).render("train", 5)
    b = SyntheticClipGenerator(num_frames=8, seed=3).render("train", 5)
    c = SyntheticClipGenerator(num_frames=8, seed=3).render("train", 6)
    d = SyntheticClipGenerator(num_frames=8, seed=4).render("train", 5)
    np.testing.assert_array_equal(a["video"], b["video"])
    assert a["action"] == b["action"] and np.array_equal(a["privacy"], b["privacy"])
    assert not np.array_equal(a["video"], c["video"])
    assert not np.array_equal(a["video"], d["video"])


def test_splits_are_different_streams():
    gen = SyntheticClipGenerator(num_frames=8)
    assert not np.array_equal(gen.render("train", 0)["video"], gen.render("test", 0)["video"])


def test_shapes_dtypes_and_labels_match_render():
    gen = SyntheticClipGenerator(num_frames=6, height=40, width=48, num_actions=5)
    clip = gen.render("val", 2, with_regions=True)
    assert clip["video"].shape == (3, 6, 40, 48) and clip["video"].dtype == np.uint8
    assert clip["action_region"].shape == (6, 40, 48) and clip["action_region"].dtype == bool
    labels = gen.labels("val", 2)
    assert labels.action == clip["action"] and 0 <= labels.action < 5
    np.testing.assert_array_equal(labels.privacy, clip["privacy"])
    assert set(np.unique(clip["privacy"])) <= {0.0, 1.0}
    assert gen.action_names == list(ACTION_NAMES[:5]) and gen.privacy_names == list(PRIVACY_ATTRIBUTES)


def test_label_balance():
    gen = SyntheticClipGenerator(num_actions=8)
    labels = [gen.labels("train", i) for i in range(2000)]
    actions = np.bincount([lab.action for lab in labels], minlength=8)
    privacy = np.stack([lab.privacy for lab in labels]).mean(0)
    assert actions.min() > 2000 / 8 * 0.75  # every class is well represented
    assert np.all(np.abs(privacy - 0.5) < 0.05)  # attributes at the configured rate


def test_correlation_one_makes_attributes_a_function_of_the_action():
    gen = SyntheticClipGenerator(correlation=1.0)
    seen: dict[int, np.ndarray] = {}
    for i in range(200):
        lab = gen.labels("train", i)
        assert np.array_equal(seen.setdefault(lab.action, lab.privacy), lab.privacy)
    indep = SyntheticClipGenerator(correlation=0.0)
    per_action = {}
    for i in range(400):
        lab = indep.labels("train", i)
        per_action.setdefault(lab.action, set()).add(tuple(lab.privacy))
    assert all(len(v) > 1 for v in per_action.values())


def test_regions_point_at_moving_limbs_and_private_appearance():
    gen = SyntheticClipGenerator(num_frames=8, height=64, width=64)
    for i in range(6):
        clip = gen.render("train", i, with_regions=True)
        video = clip["video"].astype(np.float32)
        changes = np.abs(np.diff(video, axis=1)).max(axis=0) > 60  # (T-1, H, W) large frame changes
        moving, private = clip["action_region"], clip["privacy_region"]
        assert moving.any() and private.any()
        # Large changes between frames happen on (or next to) the moving region, not elsewhere.
        near_motion = moving[1:] | moving[:-1]
        if changes.any():
            assert (changes & near_motion).sum() / changes.sum() > 0.8
    # The relationship attribute draws a second figure: private pixels (heads, torsos) on both sides of
    # the frame, where a single centred figure has none.
    for i in range(30):
        clip = gen.render("train", i, with_regions=True)
        columns = np.flatnonzero(clip["privacy_region"].any(axis=(0, 1))) / 64
        both_sides = columns.min() < 0.32 and columns.max() > 0.68
        assert both_sides == bool(clip["privacy"][4]), (i, columns.min(), columns.max())


def test_nudity_increases_skin_coloured_area():
    gen = SyntheticClipGenerator(num_frames=4, height=64, width=64, noise_std=0.0)

    def skin_share(clip):
        rgb = clip["video"][:, 0].astype(float) / 255
        light = np.abs(rgb - np.array([0.93, 0.76, 0.64])[:, None, None]).max(0) < 0.12
        dark = np.abs(rgb - np.array([0.42, 0.27, 0.17])[:, None, None]).max(0) < 0.12
        return (light | dark).mean()

    clips = [gen.render("train", i) for i in range(60)]
    nude = [skin_share(c) for c in clips if c["privacy"][3] == 1 and c["privacy"][4] == 0]
    clothed = [skin_share(c) for c in clips if c["privacy"][3] == 0 and c["privacy"][4] == 0]
    assert np.mean(nude) > 2 * np.mean(clothed)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(height=8), "too small"),
        (dict(num_frames=2), "too short"),
        (dict(num_actions=40), "num_actions"),
        (dict(correlation=1.5), "correlation"),
    ],
)
def test_impossible_settings_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticClipGenerator(**kwargs)


def test_presets_name_their_actions_and_unknown_presets_are_refused():
    from anonpriv.data.synthetic import PRESETS

    assert SyntheticClipGenerator().action_names == list(ACTION_NAMES[:8])
    hard = SyntheticClipGenerator(preset="hard", height=32, width=32)
    assert hard.action_names == list(PRESETS["hard"].action_names[:8]) and "swim" in hard.action_names
    with pytest.raises(ValueError, match="unknown synthetic preset 'easy'.*clear.*hard"):
        SyntheticClipGenerator(preset="easy")


def _tubelet_any(mask, t=4, p=8):
    T, H, W = mask.shape
    return mask.reshape(T // t, t, H // p, p, W // p, p).any(axis=(1, 3, 5))


def test_clear_preset_separates_moving_and_private_tubelets_better_than_hard():
    """At the default 4 x 8 x 8 tubelets, few tubelets that hold a moving limb also hold head, hair or
    torso; the hard preset at its 2 x 4 x 4 tubelets mixes them far more (issue 11)."""
    def mixed_share(gen, t, p):
        shares = []
        for i in range(24):
            clip = gen.render("val", i, with_regions=True)
            moving = _tubelet_any(clip["action_region"], t, p)
            private = _tubelet_any(clip["privacy_region"] & ~clip["action_region"], t, p)
            shares.append((moving & private).sum() / max(moving.sum(), 1))
        return float(np.mean(shares))

    clear = mixed_share(SyntheticClipGenerator(), 4, 8)
    hard = mixed_share(SyntheticClipGenerator(preset="hard", height=32, width=32), 2, 4)
    assert clear < 0.4 and hard > clear + 0.15, (clear, hard)


def test_one_frame_does_not_tell_the_action():
    """In any single frame, every limb's angle has the same (uniform) distribution whether the limb
    moves or not, for every action: only several frames tell the actions apart."""
    gen = SyntheticClipGenerator(num_frames=8)
    geo = gen.preset.geometry
    rng = np.random.default_rng(0)
    for spec in gen.preset.actions[: gen.num_actions]:
        poses = [gen._poses(rng, spec, spec.period, geo.height, (0.0, 1.0)) for _ in range(600)]
        for limb in ("left_arm", "right_arm", "left_leg", "right_leg"):
            lo, hi = geo.arm_range if limb.endswith("arm") else geo.leg_range
            frame = np.array([(p[limb][3] - lo) / (hi - lo) for p in poses])  # one frame, scaled to [0, 1]
            assert abs(frame.mean() - 0.5) < 0.04 and abs(frame.std() - 12 ** -0.5) < 0.03, (spec.name, limb)


def test_fresh_epochs_are_new_clips_of_the_same_distribution():
    from anonpriv.data import SyntheticSource

    source = SyntheticSource(num_frames=4, height=32, width=32, num_train=6, num_val=2, num_test=2)
    epoch0, epoch1 = source.dataset("train"), source.dataset("train", epoch=1)
    assert len(epoch0) == len(epoch1) == 6
    assert epoch1[0]["id"] == "synthetic/train/000006"
    assert not torch.equal(epoch0[0]["video"], epoch1[0]["video"])
    # Item i of epoch 1 is clip 6 + i of the same generator.
    np.testing.assert_array_equal(epoch1[2]["video"].mul(255).round().byte().numpy(),
                                  source.generator.render("train", 8)["video"])
