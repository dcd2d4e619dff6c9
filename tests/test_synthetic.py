import numpy as np
import pytest

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
    # The relationship attribute draws a second (smaller) figure: more private pixels.
    pair = [gen.render("train", i, with_regions=True) for i in range(30)]
    area = {k: np.mean([c["privacy_region"].mean() for c in pair if c["privacy"][4] == k]) for k in (0.0, 1.0)}
    assert area[1.0] > 1.2 * area[0.0]


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
