"""Action (utility) models: clip (B, C, T, H, W) in [0, 1] -> action logits."""

from __future__ import annotations

import torch
from torch import nn

from anonpriv.layers import Normalize
from anonpriv.models.registry import register_utility_model
from anonpriv.models.weights import load_local_weights, load_torchvision_state_dict, torchvision_weights

# Kinetics statistics used by torchvision's video models.
_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)


def _conv3d_block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class TinyC3D(nn.Module):
    """A four-layer 3D CNN that trains on CPU in minutes; handles any T, H, W.

    Its receptive field (about 30 pixels) suits the figures of 64-px frames. ``input_pool`` k > 1
    average-pools each frame k x k first, for larger frames whose figures are larger (2 on the 112-px
    faces data: 384 steps of Adam take it to 96-98% top-1 on raw 8-frame clips, against 78-84% unpooled;
    benchmarks/sweep_history.md), and costs a k-th squared of the compute.
    """

    def __init__(
        self, num_classes: int, width: int = 16, in_channels: int = 3, dropout: float = 0.1, motion: bool = True,
        channels_last: bool = True, input_pool: int = 1,
    ) -> None:
        super().__init__()
        if input_pool < 1:
            raise ValueError(f"input_pool={input_pool}: give 1 (no pooling) or a larger integer factor.")
        self.normalize = Normalize((0.5,) * in_channels, (0.25,) * in_channels)
        self.input_pool = int(input_pool)
        self.motion = motion
        stem_in = 2 * in_channels if motion else in_channels
        self.features = nn.Sequential(
            _conv3d_block(stem_in, width, (1, 2, 2)),
            _conv3d_block(width, 2 * width, (2, 2, 2)),
            _conv3d_block(2 * width, 4 * width, (2, 2, 2)),
            _conv3d_block(4 * width, 4 * width, (1, 1, 1)),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))
        # Channels-last 3D convolutions train about 1.5x faster on CPU (oneDNN); same numbers up to
        # float rounding (benchmarks/training_speed.py). Loading a state dict keeps this layout.
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.features.to(memory_format=self.memory_format)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.normalize(video)
        if self.input_pool > 1:
            x = nn.functional.avg_pool3d(x, (1, self.input_pool, self.input_pool), ceil_mode=True)
        if self.motion:
            # Temporal differences as extra channels make motion salient to a small network.
            diff = torch.diff(x, dim=2, prepend=x[:, :, :1])
            x = torch.cat([x, diff], dim=1)
        return self.head(self.features(x.contiguous(memory_format=self.memory_format)))


@register_utility_model
def c3d_tiny(num_classes: int, width: int = 16, dropout: float = 0.1, motion: bool = True,
             channels_last: bool = True, input_pool: int = 1) -> nn.Module:
    """:class:`TinyC3D`, the CPU default (``input_pool: 2`` for 112-px frames)."""
    return TinyC3D(num_classes, width=width, dropout=dropout, motion=motion, channels_last=channels_last,
                   input_pool=input_pool)


class TorchvisionVideoClassifier(nn.Module):
    """A torchvision video model with Kinetics normalisation in front."""

    def __init__(self, backbone: nn.Module, mean: tuple[float, ...] = _KINETICS_MEAN,
                 std: tuple[float, ...] = _KINETICS_STD) -> None:
        super().__init__()
        self.normalize = Normalize(tuple(mean), tuple(std))
        self.backbone = backbone

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(video))


#: torchvision's Kinetics-400 video models: name -> (weights enum, the classifier's prefix, replaced
#: for num_classes)
TORCHVISION_VIDEO_MODELS = {
    "r3d_18": ("R3D_18_Weights", "fc."),
    "mc3_18": ("MC3_18_Weights", "fc."),
    "r2plus1d_18": ("R2Plus1D_18_Weights", "fc."),
    "s3d": ("S3D_Weights", "classifier.1."),
}


def torchvision_video_model(name: str, num_classes: int, weights_file: str | None = None,
                            pretrained: bool | str = False) -> nn.Module:
    """torchvision's video model ``name`` (:data:`TORCHVISION_VIDEO_MODELS`) with ``num_classes`` outputs.

    ``weights_file``: a local copy of its Kinetics-400 weights (e.g. ``r2plus1d_18-91a641e6.pth``;
    never downloaded). ``pretrained``: ``true`` (or a weights name such as ``KINETICS400_V1``)
    downloads them through torchvision's own cache (``$TORCH_HOME``); without internet that is one
    :class:`~anonpriv.models.weights.WeightsDownloadError` line naming the file and ``weights_file``.
    Either way the classifier is replaced for ``num_classes``, and the input is normalised with the
    Kinetics statistics the weights were trained with.
    """
    import torchvision.models.video as video

    if name not in TORCHVISION_VIDEO_MODELS:
        raise ValueError(f"unknown torchvision video model {name!r}: use one of {sorted(TORCHVISION_VIDEO_MODELS)}.")
    if weights_file and pretrained:
        raise ValueError(f"both weights_file={weights_file!r} and pretrained={pretrained!r} are set: keep one.")
    enum_name, head = TORCHVISION_VIDEO_MODELS[name]
    backbone = getattr(video, name)(weights=None, num_classes=num_classes)
    if weights_file:
        load_local_weights(backbone, weights_file, skip_prefixes=(head,))
    if pretrained:
        weights = torchvision_weights(getattr(video, enum_name), pretrained)
        state = load_torchvision_state_dict(weights, file_option="weights_file (in place of pretrained)")
        own = backbone.state_dict()
        backbone.load_state_dict({k: v for k, v in state.items()
                                  if k in own and own[k].shape == v.shape and not k.startswith(head)}, strict=False)
        preset = weights.transforms()
        return TorchvisionVideoClassifier(backbone, tuple(preset.mean), tuple(preset.std))
    return TorchvisionVideoClassifier(backbone)


@register_utility_model
def r3d_18(num_classes: int, weights_file: str | None = None, pretrained: bool | str = False) -> nn.Module:
    """torchvision's R3D-18 (the literature's utility model at 16 x 112 x 112; Kinetics-400 clip top-1
    63.2%). ``weights_file`` / ``pretrained``: see :func:`torchvision_video_model`."""
    return torchvision_video_model("r3d_18", num_classes, weights_file, pretrained)


@register_utility_model
def mc3_18(num_classes: int, weights_file: str | None = None, pretrained: bool | str = False) -> nn.Module:
    """torchvision's MC3-18 (mixed 3D / 2D convolutions; Kinetics-400 clip top-1 64.0%).
    ``weights_file`` / ``pretrained``: see :func:`torchvision_video_model`."""
    return torchvision_video_model("mc3_18", num_classes, weights_file, pretrained)


@register_utility_model
def r2plus1d_18(num_classes: int, weights_file: str | None = None, pretrained: bool | str = False) -> nn.Module:
    """torchvision's R(2+1)D-18 (a 3D ResNet with factorised space / time convolutions; Kinetics-400
    clip top-1 67.5%, any clip size): configs/evaluation/paper.yaml's stand-in for the paper's
    I3D-ResNet-50. ``weights_file`` / ``pretrained``: see :func:`torchvision_video_model`."""
    return torchvision_video_model("r2plus1d_18", num_classes, weights_file, pretrained)


@register_utility_model
def s3d(num_classes: int, weights_file: str | None = None, pretrained: bool | str = False) -> nn.Module:
    """torchvision's S3D (separable I3D-Inception; Kinetics-400 clip top-1 68.4%). Its fixed final
    pooling needs clips of at least 16 x 224 x 224. ``weights_file`` / ``pretrained``: see
    :func:`torchvision_video_model`."""
    return torchvision_video_model("s3d", num_classes, weights_file, pretrained)
