"""The contract every registered utility and privacy model keeps, checked for each registered name.

Each model is built by name (``create_utility_model`` / ``create_privacy_model``) with the small
options of :data:`SMALL` and run in evaluation on a random clip (B, 3, T, H, W) in [0, 1]:

* the output is (B, num_outputs) and finite;
* the same seed builds the same model, which gives the same output.

Every registered model builds from its defaults without weights (a fresh initialisation: weights are
read only when a config names a file or asks for them by name), so none is skipped here; their
pretrained paths are tested offline in tests/test_timm_weights.py and tests/test_paper_evaluation.py.
A model registered later fails :func:`test_every_registered_model_has_small_settings` until it gets
an entry in :data:`SMALL`.

Inputs are kept tiny. torchvision's 3D ResNets take a 4 x 32 x 32 clip; S3D's fixed final pooling
needs 16 x 224 x 224, so it runs one clip (the slowest case, a few seconds on 2 cores).
"""

from __future__ import annotations

import pytest
import torch

from anonpriv.models import (
    create_privacy_model,
    create_utility_model,
    list_privacy_models,
    list_utility_models,
)

NUM_OUTPUTS = 3


def small(options: dict | None = None, clip: tuple[int, int, int] = (8, 32, 32), batch: int = 2) -> dict:
    return {"options": options or {}, "clip": clip, "batch": batch}


#: (kind, registered name) -> the options it is built with and the clip (T, H, W) and batch it runs on.
SMALL = {
    ("utility", "c3d_tiny"): small({"width": 8}),
    ("utility", "tubelet_vit_tiny"): small({"clip_shape": [8, 32, 32], "tubelet": [2, 8, 8], "embed_dim": 24,
                                            "num_heads": 2, "depth": 1}),
    ("utility", "r3d_18"): small(clip=(4, 32, 32)),
    ("utility", "mc3_18"): small(clip=(4, 32, 32)),
    ("utility", "r2plus1d_18"): small(clip=(4, 32, 32)),
    ("utility", "s3d"): small(clip=(16, 224, 224), batch=1),
    ("privacy", "frame_cnn_tiny"): small({"width": 8}, clip=(2, 32, 32)),
    ("privacy", "timm_frames"): small({"model_name": "resnet18"}, clip=(2, 32, 32)),
    ("privacy", "resnet18"): small(clip=(2, 32, 32)),
    ("privacy", "resnet50"): small(clip=(2, 32, 32)),
    ("privacy", "vit_micro"): small(clip=(2, 32, 32)),
}

REGISTERED = [("utility", name) for name in list_utility_models()] + [
    ("privacy", name) for name in list_privacy_models()
]
BUILDERS = {"utility": create_utility_model, "privacy": create_privacy_model}


def _build(kind: str, name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return BUILDERS[kind](name, NUM_OUTPUTS, dict(SMALL[kind, name]["options"])).eval()


def test_every_registered_model_has_small_settings():
    missing = [f"{kind} model {name!r}" for kind, name in REGISTERED if (kind, name) not in SMALL]
    assert not missing, f"add small build options and a clip for {missing} to SMALL in this file"


@pytest.mark.parametrize(("kind", "name"), [case for case in REGISTERED if case in SMALL],
                         ids=[f"{kind}-{name}" for kind, name in REGISTERED if (kind, name) in SMALL])
def test_model_contract(kind, name):
    settings = SMALL[kind, name]
    clip = torch.rand(settings["batch"], 3, *settings["clip"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = _build(kind, name, seed=0)(clip)
        again = _build(kind, name, seed=0)(clip)
    assert out.shape == (settings["batch"], NUM_OUTPUTS)
    assert out.dtype.is_floating_point and bool(torch.isfinite(out).all())
    assert torch.equal(out, again), "the same seed must build the same model"
