"""SPAct's anonymizer, a per-frame UNet (``f_A`` of :class:`~anonpriv.baselines.spact.SPActBaseline`), with torch
alone: this module imports neither the methods' base class nor Lightning, so a trained SPAct
checkpoint's anonymizer is rebuilt without them
(:func:`anonpriv.methods.registry.load_checkpoint_anonymizer`). The method is in :mod:`anonpriv.baselines.spact.method`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv -> BatchNorm -> ReLU layers, the UNet's unit."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """An image-to-image UNet with a sigmoid output in [0, 1].

    ``depth`` max-pool levels, each doubling the width; the decoder up-samples (bilinear, to the
    size of the matching encoder map, so any H and W >= ``2 ** depth`` work), concatenates the skip
    connection and applies a conv block.

    Args:
        in_channels, out_channels: image channels (3 -> 3 for an anonymizer).
        width: channels of the first level.
        depth: number of down-sampling levels.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"UNet width={width} and depth={depth} must both be at least 1.")
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = _conv_block(in_channels, widths[0])
        self.encoder = nn.ModuleList(_conv_block(widths[i], widths[i + 1]) for i in range(depth))
        self.reduce = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(_conv_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        smallest = 2**self.depth
        if images.shape[-1] < smallest or images.shape[-2] < smallest:
            raise ValueError(
                f"frames of {tuple(images.shape[-2:])} pixels are too small for a UNet of depth {self.depth}: "
                f"they must be at least {smallest} x {smallest}; lower unet_depth."
            )
        x = self.stem(images)
        skips = []
        for block in self.encoder:
            skips.append(x)
            x = block(F.max_pool2d(x, 2))
        for reduce, block in zip(self.reduce, self.decoder):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([reduce(x), skip], dim=1))
        return torch.sigmoid(self.head(x))


class FrameUNet(nn.Module):
    """Applies an image UNet to every frame of a clip (B, C, T, H, W); the output has the same shape.

    The frames go through the UNet in channels-last memory layout, which roughly halves the cost of
    its convolutions on CPU (measured) and suits tensor cores on GPU; the values are unchanged.
    """

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}.")
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w).contiguous(memory_format=torch.channels_last)
        out = self.unet(frames)
        return out.reshape(b, t, -1, h, w).transpose(1, 2)


def spact_anonymizer(unet_width: int = 16, unet_depth: int = 2) -> FrameUNet:
    """The anonymizer of a :class:`~anonpriv.baselines.spact.SPActBaseline` built with these arguments (the
    method's own names): an RGB-to-RGB :class:`UNet` applied to every frame."""
    return FrameUNet(UNet(3, 3, unet_width, unet_depth))
