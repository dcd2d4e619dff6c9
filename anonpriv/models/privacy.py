"""Privacy models (a method's own and the protocol's attackers): 2D image models per frame, logits averaged over time."""

from __future__ import annotations

import torch
from torch import nn

from anonpriv.layers import Normalize
from anonpriv.models.registry import register_privacy_model
from anonpriv.models.weights import create_timm_model, timm_normalization

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PerFrameClassifier(nn.Module):
    """Applies an image classifier to every ``frame_stride``-th frame and averages the logits.

    Input (B, C, T, H, W); the frames of all clips go through the image model as one batch.
    """

    def __init__(self, image_model: nn.Module, frame_stride: int = 1, normalize: Normalize | None = None) -> None:
        super().__init__()
        if frame_stride < 1:
            raise ValueError(f"frame_stride={frame_stride} must be at least 1.")
        self.image_model = image_model
        self.frame_stride = frame_stride
        self.normalize = normalize if normalize is not None else nn.Identity()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        frames = video[:, :, :: self.frame_stride]
        b, c, t, h, w = frames.shape
        images = frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        logits = self.image_model(self.normalize(images))
        return logits.view(b, t, -1).mean(dim=1)


def _conv2d_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyFrameCNN(nn.Module):
    """A four-layer 2D CNN over one frame."""

    def __init__(self, num_outputs: int, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv2d_block(in_channels, width, 2),
            _conv2d_block(width, 2 * width, 2),
            _conv2d_block(2 * width, 4 * width, 2),
            _conv2d_block(4 * width, 4 * width, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_outputs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


@register_privacy_model
def frame_cnn_tiny(num_attributes: int, width: int = 16, frame_stride: int = 1) -> nn.Module:
    """:class:`TinyFrameCNN` per frame, the CPU default."""
    return PerFrameClassifier(
        TinyFrameCNN(num_attributes, width=width), frame_stride, Normalize((0.5,) * 3, (0.25,) * 3)
    )


@register_privacy_model
def timm_frames(
    num_attributes: int,
    model_name: str = "resnet18",
    frame_stride: int = 1,
    weights_file: str | None = None,
    model_kwargs: dict | None = None,
    pretrained: bool | str = False,
) -> nn.Module:
    """Any timm image model per frame (ResNets, ViTs, ...).

    ``weights_file``: local pretrained weights (never downloaded), loaded through timm's
    ``pretrained_cfg_overlay`` so position embeddings are resampled and the classifier is replaced;
    name the tag the file was trained as in ``model_name`` (``vit_base_patch16_224.augreg_in21k_ft_in1k``).
    ``pretrained``: ``true`` downloads ``model_name``'s weights through timm's own cache, a string
    those of that timm name (``hf-hub:...`` from the Hugging Face Hub). With weights loaded the
    frames are normalised with the statistics in the weights' ``pretrained_cfg``; without, with
    ImageNet's.
    """
    kwargs = dict(model_kwargs or {})
    model = create_timm_model(model_name, pretrained=pretrained, weights_file=weights_file,
                              num_classes=num_attributes, **kwargs)
    mean, std = timm_normalization(model) if (weights_file or pretrained) else (_IMAGENET_MEAN, _IMAGENET_STD)
    return PerFrameClassifier(model, frame_stride, Normalize(mean, std))


@register_privacy_model
def resnet18(num_attributes: int, frame_stride: int = 1, weights_file: str | None = None,
             pretrained: bool | str = False) -> nn.Module:
    """timm ResNet-18 per frame (``weights_file`` / ``pretrained``: see :func:`timm_frames`)."""
    return timm_frames(num_attributes, "resnet18", frame_stride, weights_file, pretrained=pretrained)


@register_privacy_model
def resnet50(num_attributes: int, frame_stride: int = 1, weights_file: str | None = None,
             pretrained: bool | str = False) -> nn.Module:
    """timm ResNet-50 per frame, the paper's attacker (``weights_file`` / ``pretrained``: see :func:`timm_frames`)."""
    return timm_frames(num_attributes, "resnet50", frame_stride, weights_file, pretrained=pretrained)


@register_privacy_model
def vit_micro(num_attributes: int, patch_size: int = 4, frame_stride: int = 1) -> nn.Module:
    """A 4-block, 96-wide timm ViT per frame (any frame size): a CPU-sized transformer attacker."""
    return timm_frames(
        num_attributes, "vit_tiny_patch16_224", frame_stride,
        model_kwargs=dict(img_size=32, patch_size=patch_size, embed_dim=96, depth=4, num_heads=3,
                          dynamic_img_size=True),
    )
