"""c3d_tiny's input pooling (for frames larger than the 64-px default)."""

import pytest
import torch
import torch.nn.functional as F

from anonpriv.models import create_utility_model


def test_input_pool_equals_the_unpooled_model_on_pooled_frames():
    torch.manual_seed(0)
    pooled = create_utility_model("c3d_tiny", 4, {"input_pool": 2}).eval()
    plain = create_utility_model("c3d_tiny", 4, {}).eval()
    plain.load_state_dict(pooled.state_dict())  # pooling adds no parameters
    clip = torch.rand(2, 3, 8, 112, 112)
    out = pooled(clip)
    assert out.shape == (2, 4)
    # Normalisation is affine, so pooling after it equals pooling the [0, 1] frames first.
    assert torch.allclose(out, plain(F.avg_pool3d(clip, (1, 2, 2))), atol=1e-5)
    assert not torch.allclose(out, plain(clip), atol=1e-3)


def test_input_pool_below_one_is_refused():
    with pytest.raises(ValueError, match="input_pool=0"):
        create_utility_model("c3d_tiny", 4, {"input_pool": 0})
