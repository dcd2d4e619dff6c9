"""The appearance-rich synthetic preset (anonpriv/data/synthetic_objects.py): classes of one motion
family share its motion law and differ only by the held object (and scene prop)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.data.synthetic import PRIVACY_ATTRIBUTES
from anonpriv.data.synthetic_objects import (
    FAMILIES,
    OBJECT_COLORS,
    OBJECT_SPRITES,
    OBJECTS,
    SyntheticObjectsGenerator,
    SyntheticObjectsSource,
)

RELATIONSHIP = PRIVACY_ATTRIBUTES.index("relationship")


def test_same_seed_same_clip_other_seed_or_index_differs():
    a = SyntheticObjectsGenerator(num_frames=8, seed=3).render("train", 5, with_regions=True)
    b = SyntheticObjectsGenerator(num_frames=8, seed=3).render("train", 5, with_regions=True)
    np.testing.assert_array_equal(a["video"], b["video"])
    for key in ("object_region", "object_envelope", "person_region"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["action"] == b["action"] and np.array_equal(a["privacy"], b["privacy"])
    assert not np.array_equal(a["video"], SyntheticObjectsGenerator(num_frames=8, seed=3).render("train", 6)["video"])
    assert not np.array_equal(a["video"], SyntheticObjectsGenerator(num_frames=8, seed=4).render("train", 5)["video"])
    # Without regions: the same pixels and no masks.
    plain = SyntheticObjectsGenerator(num_frames=8, seed=3).render("train", 5)
    np.testing.assert_array_equal(plain["video"], a["video"])
    assert set(plain) == {"video", "action", "privacy"}


def test_classes_are_families_times_objects_and_knobs_are_checked():
    gen = SyntheticObjectsGenerator(families=4, objects=2)
    assert gen.action_names == [f"{f.name}_{o}" for f in FAMILIES[:4] for o in OBJECTS[:2]]
    assert [gen.family_of(a) for a in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    source = SyntheticObjectsSource(num_train=4, num_val=2, num_test=2, with_regions=True)
    assert len(source.action_names) == 9 and source.privacy_names == list(PRIVACY_ATTRIBUTES)
    item = source.dataset("train")[0]
    assert set(item) >= {"video", "action", "privacy", "object_region", "person_region"}
    for kwargs, message in ((dict(objects=4), "objects=4"), (dict(families=0), "families=0"),
                            (dict(attribute_visibility=1.5), "attribute_visibility"), (dict(object_cell=0), "object_cell")):
        with pytest.raises(ValueError, match=message):
            SyntheticObjectsGenerator(**kwargs)


def test_the_knobs_change_how_much_the_object_tells():
    """object_cell=2 draws each sprite cell as 2 x 2 pixels (4x the object's pixels); object_color_cue=1
    gives every object its own colour (a class cue), where at 0 the colour is drawn from the shared palette."""
    def object_pixels_and_own_colour(**knobs):
        gen = SyntheticObjectsGenerator(num_frames=4, noise_std=0.0, **knobs)
        pixels, own = [], []
        for i in range(45):
            clip = gen.render("train", i, with_regions=True)
            region = clip["object_region"]
            pixels.append(np.median([frame.sum() for frame in region if frame.any()]))
            colours = clip["video"].transpose(1, 2, 3, 0)[region] / 255
            colour = OBJECT_COLORS[OBJECTS.index(gen.object_of(clip["action"]))]
            own.append(bool((np.abs(colours - colour).max(axis=1) < 0.05).any()))
        return np.mean(pixels), np.mean(own)

    pixels, own = object_pixels_and_own_colour()
    big_pixels, _ = object_pixels_and_own_colour(object_cell=2)
    cued_pixels, cued_own = object_pixels_and_own_colour(object_color_cue=1.0)
    assert 3.5 < big_pixels / pixels < 4.5
    assert cued_own == 1.0 and own < 0.5  # palette of 6, 2 colours per object: about 1/3 by chance
    assert abs(cued_pixels - pixels) < 0.1 * pixels


def test_a_family_shares_one_motion_law():
    """Every class of a family moves by its family's law: the same random stream gives the same poses
    whatever the object, and a single frame's limb angles have one distribution for the whole family."""
    gen = SyntheticObjectsGenerator(num_frames=8)
    geo = gen.preset.geometry
    for f in range(gen.families):
        specs = gen.preset.actions[f * gen.objects:(f + 1) * gen.objects]
        for spec in specs[1:]:
            assert spec.moving == specs[0].moving and spec.period == specs[0].period
            a = gen._poses(np.random.default_rng(5), specs[0], 12.0, geo.height, (0.0, 1.0))
            b = gen._poses(np.random.default_rng(5), spec, 12.0, geo.height, (0.0, 1.0))
            assert all(np.array_equal(a[k], b[k]) for k in a)
        rng = np.random.default_rng(f)
        frames = {}
        for spec in specs:
            poses = [gen._poses(rng, spec, spec.period, geo.height, (0.0, 1.0)) for _ in range(400)]
            frames[spec.name] = {limb: np.array([p[limb][3] for p in poses]) for limb in ("left_arm", "right_arm")}
        names = list(frames)
        for limb in ("left_arm", "right_arm"):
            means = [frames[n][limb].mean() for n in names]
            stds = [frames[n][limb].std() for n in names]
            assert max(means) - min(means) < 0.08 and max(stds) - min(stds) < 0.06, (specs[0].name, limb)
    # Families differ in motion: which arm moves.
    assert FAMILIES[0].moving != FAMILIES[1].moving


def test_masks_cover_the_object_and_the_object_is_not_the_person():
    gen = SyntheticObjectsGenerator(num_frames=8, scene_prop=1.0, noise_std=0.0)
    for i in range(12):
        clip = gen.render("val", i, with_regions=True)
        objects, envelope = clip["object_region"], clip["object_envelope"]
        assert objects.any() and (objects <= envelope).all()
        assert not (objects & clip["person_region"]).any() and not (objects & clip["privacy_region"]).any()
        # Every object pixel has one of the objects' colours (two each for the prop and the held object).
        rgb = clip["video"].transpose(1, 2, 3, 0)[objects]
        assert len(np.unique(rgb, axis=0)) <= 4
    # Without a prop, every object pixel is a held object, which moves with the hand (the moving region).
    gen = SyntheticObjectsGenerator(num_frames=8)
    for i in range(12):
        clip = gen.render("val", i, with_regions=True)
        assert (clip["object_region"] <= clip["action_region"]).all()
    # A held object, fully in the frame, is its sprite: the object's pixels are the sprite's cells.
    gen = SyntheticObjectsGenerator(num_frames=4)
    sizes = {name: int((sprite > 0).sum()) for name, sprite in OBJECT_SPRITES.items()}
    for i in range(20):
        clip = gen.render("train", i, with_regions=True)
        if clip["privacy"][RELATIONSHIP]:
            continue
        counts = clip["object_region"].sum(axis=(1, 2))
        expected = sizes[gen.object_of(clip["action"])]
        assert (counts <= expected).all() and (counts == expected).mean() > 0.5


# -- appearance alone tells a family's classes apart --------------------------------------------
def _object_crops(gen, clips, split="train"):
    """Per single-figure clip: the held object's 9 x 5 envelope in the first frame it is whole (3 x 9 x 5),
    two frames with every envelope blacked out (3 x 2 x H x W), the same two frames as drawn, and the
    object's index."""
    crops, blanked, drawn, labels = [], [], [], []
    index = 0
    while len(labels) < clips:
        clip = gen.render(split, index, with_regions=True)
        index += 1
        if clip["privacy"][RELATIONSHIP]:
            continue  # one figure: one object
        video = clip["video"].astype(np.float32) / 255
        env = clip["object_envelope"]
        for t in range(env.shape[0]):
            rows, cols = np.flatnonzero(env[t].any(1)), np.flatnonzero(env[t].any(0))
            if len(rows) == 9 and len(cols) == 5:
                crops.append(video[:, t, rows[0]:rows[0] + 9, cols[0]:cols[0] + 5])
                break
        else:
            continue
        frames = [0, env.shape[0] // 2]
        blanked.append((video * ~env[None])[:, frames])
        drawn.append(video[:, frames])
        labels.append(clip["action"] % gen.objects)
    return (torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(blanked)),
            torch.from_numpy(np.stack(drawn)), torch.tensor(labels))


def _train_eval(model, x, y, steps=300, lr=3e-3, test_share=0.3, batch=64):
    torch.manual_seed(0)
    n_test = int(len(x) * test_share)
    xtr, ytr, xte, yte = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for step in range(steps):
        idx = torch.randint(len(xtr), (batch,))
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (model(xte).argmax(1) == yte).float().mean().item()


@pytest.fixture(scope="module")
def appearance_data():
    torch.manual_seed(0)
    return _object_crops(SyntheticObjectsGenerator(num_frames=8), 360)


def test_the_object_tells_the_classes_apart_and_the_figure_without_it_does_not(appearance_data):
    crops, blanked, drawn, labels = appearance_data
    chance = 1 / 3
    torch.manual_seed(0)
    on_object = _train_eval(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                          nn.Linear(16 * 45, 3)), crops, labels)

    def frame_classifier():  # full-resolution features, max-pooled: it can find a few-pixel object anywhere
        return nn.Sequential(nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 3))

    # 2 frames as 6 channels. The control: the same classifier on the frames as drawn finds the object,
    # so its failure on the frames without the object says the figure carries no class, not that it is weak.
    on_frames = _train_eval(frame_classifier(), drawn.flatten(1, 2), labels, steps=150, batch=32)
    on_figure = _train_eval(frame_classifier(), blanked.flatten(1, 2), labels, steps=150, batch=32)
    print(f"object's class from the object {on_object:.3f}, from the frames {on_frames:.3f}, "
          f"from the figure without the object {on_figure:.3f}")
    assert on_object > 0.9
    assert on_frames > 0.8
    assert on_figure < chance + 0.12


def test_the_scene_prop_tells_the_classes_apart():
    """The prop's pixels (its static 7 x 7 box in the first frame) tell the object, colour drawn at random."""
    gen = SyntheticObjectsGenerator(num_frames=4, scene_prop=1.0)
    crops, labels = [], []
    for i in range(300):
        clip = gen.render("train", i, with_regions=True)
        static = clip["object_envelope"].all(axis=0)  # the prop's box (held objects move)
        rows, cols = np.flatnonzero(static.any(1)), np.flatnonzero(static.any(0))
        if len(rows) != 7 or len(cols) != 7:
            continue
        crops.append(clip["video"][:, 0, rows[0]:rows[0] + 7, cols[0]:cols[0] + 7].astype(np.float32) / 255)
        labels.append(clip["action"] % gen.objects)
    x, y = torch.from_numpy(np.stack(crops)), torch.tensor(labels)
    torch.manual_seed(0)
    accuracy = _train_eval(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(16 * 49, 3)), x, y)
    assert accuracy > 0.85, accuracy


def test_visibility_hides_present_attributes_in_some_clips():
    """attribute_visibility < 1: some clips labelled relationship=1 show a single figure."""
    def second_figure(gen, i):
        clip = gen.render("train", i, with_regions=True)
        columns = np.flatnonzero(clip["privacy_region"].any(axis=(0, 1))) / clip["video"].shape[-1]
        return clip["privacy"][RELATIONSHIP], columns.min() < 0.32 and columns.max() > 0.68

    full = [second_figure(SyntheticObjectsGenerator(num_frames=4, attribute_visibility=1.0), i) for i in range(40)]
    assert all(bool(label) == shown for label, shown in full)
    half = [second_figure(SyntheticObjectsGenerator(num_frames=4, attribute_visibility=0.5), i) for i in range(60)]
    shown = [s for label, s in half if label]
    assert 0.2 < np.mean(shown) < 0.8 and not any(s for label, s in half if not label)


def test_a_tiny_action_model_learns_the_classes_from_raw_clips():
    """c3d_tiny on raw clips beats the best a motion-only model can do (one class in three per family)."""
    from anonpriv.models import create_utility_model

    # 32-px frames (the objects keep their 9 x 5 pixels, so they are larger against the figure): seconds on a CPU.
    source = SyntheticObjectsSource(num_frames=8, height=32, width=32, num_train=512, num_val=1, num_test=256, seed=11)

    def stack(split):
        ds = source.dataset(split)
        items = [ds[i] for i in range(len(ds))]
        return torch.stack([i["video"] for i in items]), torch.stack([i["action"] for i in items])

    (xtr, ytr), (xte, yte) = stack("train"), stack("test")
    torch.manual_seed(0)
    model = create_utility_model("c3d_tiny", 9)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    epochs, batch = 6, 32
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * len(xtr) // batch)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xtr))
        for i in range(0, len(xtr) - batch + 1, batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        top1 = (model(xte).argmax(1) == yte).float().mean().item()
    print(f"raw top-1 {top1:.3f} (chance {1 / 9:.3f}; motion alone at most {1 / 3:.3f})")
    assert top1 > 0.5
