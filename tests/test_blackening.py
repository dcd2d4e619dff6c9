"""blackening: the actor region blacked out, from the renderer's person mask or from a person detector.

* On synthetic clips with regions the person's box (or mask) is black and every other pixel unchanged,
  and no detector is built; the mask reaches the method through the DataModule and the protocol.
* Without masks a person detector's boxes above the threshold are blacked out, each unique frame
  detected once (float and uint8 frames share the cache).
* The torchvision detector builds from a local file with no download; by name and offline it fails on
  first use with one line naming ``detector_weights_file`` and the file.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import default_collate

from anonpriv.baselines.blackening.anonymizer import Blackening, TorchvisionPersonDetector, boxes_mask, mask_boxes
from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.methods import build_anonymizer, build_method
from anonpriv.models.weights import WeightsDownloadError

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")


def _source(**kwargs) -> SyntheticSource:
    # seed 2: the first 8 training clips include one-figure and two-figure (relationship) clips
    options = dict(num_frames=4, height=48, width=48, num_train=8, num_val=4, num_test=4, seed=2, with_regions=True)
    return SyntheticSource(**(options | kwargs))


@pytest.fixture(scope="module")
def synthetic_batch() -> dict:
    dataset = _source().dataset("train")
    return default_collate([dataset[i] for i in range(8)])


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """torchvision's download fails as it does without internet (an empty cache in tmp_path)."""
    import urllib.error

    import torchvision.models._api as api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    asked = []

    def fetch(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", fetch)
    return asked


def _black(video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B, T, H, W): pixels black in every channel."""
    return (video == 0).all(dim=1)


def test_the_synthetic_source_serves_the_person_mask(synthetic_batch):
    person = synthetic_batch["person_region"]
    assert person.dtype == torch.bool and person.shape == (8, 4, 48, 48)
    # Every figure part is a person pixel: the moving and the private parts are among them.
    assert bool((synthetic_batch["action_region"] <= person).all()) and bool((synthetic_batch["privacy_region"] <= person).all())
    assert 0.02 < person.float().mean() < 0.6


def test_mask_mode_blackens_exactly_the_person(synthetic_batch, offline):
    method = build_method("blackening", num_actions=8, num_privacy=5, region="mask").eval()
    video, person = synthetic_batch["video"], synthetic_batch["person_region"]
    out = method.batch_anonymizer_outputs(synthetic_batch)["video"]
    assert bool(_black(out)[person].all())
    keep = ~person.unsqueeze(1).expand_as(video)
    assert torch.equal(out[keep], video[keep])
    assert method.anonymizer._detector is None and offline == []  # no detector built, nothing downloaded


def test_box_mode_blackens_each_figures_bounding_box(synthetic_batch, offline):
    method = build_method("blackening", num_actions=8, num_privacy=5).eval()
    video, person = synthetic_batch["video"], synthetic_batch["person_region"]
    hidden = method.anonymizer.hidden_region(video, person)
    out = method.batch_anonymizer_outputs(synthetic_batch)["video"]
    assert torch.equal(_black(out) | ~hidden, torch.ones_like(hidden))  # the boxes are black
    keep = ~hidden.unsqueeze(1).expand_as(video)
    assert torch.equal(out[keep], video[keep])  # the rest is unchanged
    pairs = synthetic_batch["privacy"][:, 4].bool()  # relationship: two figures side by side
    assert pairs.any() and (~pairs).any()
    for clip in range(8):
        for t in range(4):
            mask = person[clip, t]
            rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
            rectangle = torch.zeros_like(mask)
            rectangle[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
            assert bool((mask <= hidden[clip, t]).all())
            if pairs[clip]:  # two boxes: inside the pair's rectangle, not all of it
                assert bool((hidden[clip, t] <= rectangle).all())
            else:  # one figure: exactly its bounding box
                assert torch.equal(hidden[clip, t], rectangle)
    assert method.anonymizer._detector is None and offline == []


def test_mask_boxes_one_box_per_run_of_columns_with_margin():
    mask = torch.zeros(2, 10, 12, dtype=torch.bool)
    mask[0, 2:5, 1:3] = True
    mask[0, 6:8, 2] = True  # same columns: the same box
    mask[0, 1:3, 7:10] = True  # after an empty column: a second box
    boxes = mask_boxes(mask)
    assert boxes.tolist() == [[[1, 2, 3, 8], [7, 1, 10, 3]], [[0, 0, 0, 0], [0, 0, 0, 0]]]
    hidden = boxes_mask(boxes, 10, 12)
    assert int(hidden[0].sum()) == 2 * 6 + 3 * 2 and not hidden[1].any()
    grown = Blackening(margin=0.5, detector=None).hidden_region(torch.rand(1, 3, 2, 10, 12), mask.unsqueeze(0))
    assert grown[0, 0, 0:10, 0:4].all() and grown[0, 0, 0:4, 5:12].all()  # each box grown by half its size, clipped


def test_without_masks_the_detector_boxes_are_blacked_once_per_unique_frame(stub_person_detector):
    method = build_method("blackening", num_actions=3, num_privacy=2, detector="stub_people", margin=0.0).eval()
    frames = torch.rand(3, 3, 16, 20)
    clip = frames[[0, 1, 2, 0, 1, 2]].transpose(0, 1)  # (3, 6, 16, 20): every frame twice
    video = torch.stack([clip, clip])  # and the clip twice
    out = method.anonymize(video)
    assert stub_person_detector == [3]  # three unique frames, one detector call
    hidden = torch.zeros(16, 20, dtype=torch.bool)
    hidden[4:12, 5:15] = True  # the person box; the faint corner box (score 0.1) stays
    assert bool(_black(out)[:, :, hidden].all())
    assert torch.equal(out[:, :, :, ~hidden], video[:, :, :, ~hidden])
    method.anonymize(video)
    uint8 = (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
    out_uint8 = method.anonymizer.forward_uint8(uint8)
    assert stub_person_detector == [3]  # seen before, as floats or as uint8: not detected again
    assert torch.equal(out_uint8[:, hidden], torch.zeros_like(out_uint8[:, hidden]))
    assert torch.equal(out_uint8[:, ~hidden], uint8[:, ~hidden])
    # The torch-only anonymizer (`anonpriv anonymize`) does the same and keeps frames in uint8.
    anonymizer = build_anonymizer("blackening", detector="stub_people")
    assert anonymizer.takes_uint8 and torch.equal(anonymizer.anonymize_uint8(uint8), out_uint8)
    assert torch.equal(anonymizer.anonymize(video), out)


def test_the_person_mask_reaches_the_method_through_the_datamodule_and_the_protocol(offline, tmp_path):
    from anonpriv.evaluation import ProtocolEvaluation

    dm = VideoPrivacyDataModule(_source(), batch_size=4)
    protocol = ProtocolEvaluation(anonymizer="blackening", anonymizer_kwargs={"region": "mask"},
                                  attackers=["frame_cnn_tiny"], num_actions=dm.num_actions, num_privacy=dm.num_privacy,
                                  clip_shape=dm.clip_shape)
    trainer = pl.Trainer(accelerator="cpu", fast_dev_run=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(protocol, datamodule=dm)
    batch = next(iter(dm.test_dataloader()))
    out = protocol.batch_anonymizer_outputs(batch)["video"]
    assert bool(_black(out)[batch["person_region"]].all())
    assert offline == []  # the detector was never needed


def test_a_batch_without_masks_and_no_detector_names_the_fix():
    method = build_method("blackening", detector=None)
    with pytest.raises(ValueError, match="with_regions: true"):
        method.anonymize(torch.rand(1, 3, 2, 8, 8))
    with pytest.raises(ValueError, match=r"needs the person mask.*use region: box"):
        build_method("blackening", region="mask").anonymize(torch.rand(1, 3, 2, 8, 8))
    with pytest.raises(ValueError, match=r"person_region has shape \(1, 2, 8, 9\).*\(1, 2, 8, 8\)"):
        Blackening()(torch.rand(1, 3, 2, 8, 8), torch.zeros(1, 2, 8, 9, dtype=torch.bool))
    for options, match in [({"detector": "yolo"}, "unknown"), ({"margin": -1}, "margin"),
                           ({"score_threshold": 1.0}, "score_threshold"), ({"region": "blur"}, "region"),
                           ({"detector": None, "detector_weights_file": "x.pth"}, "detector is null")]:
        with pytest.raises(ValueError, match=match):
            build_method("blackening", **options)


def test_offline_the_detector_by_name_fails_on_first_use_in_one_line(offline):
    method = build_method("blackening")  # building needs no weights: masks may never need a detector
    with pytest.raises(WeightsDownloadError) as error:
        method.anonymize(torch.rand(1, 3, 2, 16, 16))
    message = str(error.value)
    assert "\n" not in message and "detector_weights_file" in message and "with_regions: true" in message
    assert "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth" in message
    assert offline == ["https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth"]


def test_the_torchvision_detector_loads_a_local_file_and_keeps_persons_only(tmp_path, offline):
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    coco = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "detector.pth"
    torch.save(coco.state_dict(), path)
    with pytest.raises(FileNotFoundError, match="detector_weights_file .*fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9"):
        TorchvisionPersonDetector("fasterrcnn_mobilenet_v3_large_320_fpn", str(tmp_path / "missing.pth"))
    detector = TorchvisionPersonDetector("fasterrcnn_mobilenet_v3_large_320_fpn", str(path))
    assert offline == [] and detector.person == 1
    assert torch.equal(detector.model.backbone.body["0"][0].weight, coco.backbone.body["0"][0].weight)
    found = detector(torch.rand(2, 3, 40, 56))  # a real (random-weight) detection pass
    assert len(found) == 2 and all(f.shape[1] == 5 for f in found)

    class Fixed(torch.nn.Module):  # the model's output format, with a person and a car
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return [{"boxes": torch.tensor([[1.0, 2, 9, 12], [3, 3, 6, 6]]), "labels": torch.tensor([1, 3]),
                     "scores": torch.tensor([0.8, 0.99])} for _ in images]

    detector.model = Fixed()
    assert [f.tolist() for f in detector(torch.rand(1, 3, 16, 16))] == [[[1.0, 2.0, 9.0, 12.0, pytest.approx(0.8)]]]
