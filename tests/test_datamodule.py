import pytest
import torch

from anonpriv.data import SyntheticSource, VideoPrivacyDataModule


def test_batches_have_the_documented_keys_shapes_and_dtypes(tiny_datamodule):
    dm = tiny_datamodule
    assert dm.num_actions == 8 and dm.num_privacy == 5
    assert dm.privacy_names == ["face", "skin_color", "gender", "nudity", "relationship"]
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 8, 32, 32) and batch["video"].dtype == torch.float32
    assert 0.0 <= batch["video"].min() and batch["video"].max() <= 1.0
    assert batch["action"].shape == (4,) and batch["action"].dtype == torch.int64
    assert batch["privacy"].shape == (4, 5) and batch["privacy"].dtype == torch.float32
    assert len(batch["id"]) == 4 and all(isinstance(i, str) for i in batch["id"])


def test_label_space_is_known_before_setup():
    dm = VideoPrivacyDataModule(SyntheticSource(num_actions=5))
    assert dm.num_actions == 5 and len(dm.action_names) == 5  # what LightningCLI links into models


def test_dataset_items_match_cheap_labels(tiny_source):
    ds = tiny_source.dataset("val")
    actions, privacy = ds.labels()
    for i in range(len(ds)):
        item = ds[i]
        assert int(item["action"]) == actions[i]
        assert torch.equal(item["privacy"], torch.from_numpy(privacy[i]))


def test_subset_keeps_and_renumbers_actions_and_attributes(tiny_source):
    keep = ["march", "wave_left"]
    dm = VideoPrivacyDataModule(tiny_source, batch_size=4, actions=keep, attributes=["nudity", "face"])
    assert dm.num_actions == 2 and dm.privacy_names == ["nudity", "face"]
    full = tiny_source.dataset("train")
    sub = dm.split("train")
    full_actions, full_privacy = full.labels()
    expected = [i for i, a in enumerate(full_actions) if tiny_source.action_names[a] in keep]
    assert len(sub) == len(expected) > 0
    for j, i in enumerate(expected):
        item = sub[j]
        assert keep[int(item["action"])] == tiny_source.action_names[full_actions[i]]
        assert item["privacy"].tolist() == [full_privacy[i][3], full_privacy[i][0]]
        assert torch.equal(item["video"], full[i]["video"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(actions=["fly"]), "unknown actions"),
        (dict(attributes=["age"]), "unknown attributes"),
        (dict(actions=["march"]), "at least two actions"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_settings_get_clear_errors(tiny_source, kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoPrivacyDataModule(tiny_source, **kwargs)


def test_rendering_is_shared_between_datamodules(tiny_source):
    a = VideoPrivacyDataModule(tiny_source).split("test")
    item = a[0]
    b = VideoPrivacyDataModule(tiny_source).split("test")
    assert b._store is a._store and torch.equal(b[0]["video"], item["video"])
