"""Johnson et al.'s image transformation network for fast style transfer (lesson 14).

"Perceptual Losses for Real-Time Style Transfer and Super-Resolution" (https://arxiv.org/abs/1603.08155),
with the improvements everyone adopted since: instance norm instead of batch norm (Ulyanov et al.,
https://arxiv.org/abs/1607.08022), reflection padding (no dark borders) and nearest-neighbour upsampling
followed by a convolution instead of transposed convolutions (no checkerboard artefacts, Odena et al.,
https://distill.pub/2016/deconv-checkerboard/).

    photo (B, 3, H, W) in [0, 1] -> 9x9 conv -> 2 strided 3x3 convs (H/4) -> residual blocks
                                 -> 2 x (upsample x2, 3x3 conv) -> 9x9 conv -> stylised (B, 3, H, W) in [0, 1]
With four `channels` there is a third strided conv (and a third upsampling): the residual blocks work at H/8,
so they see twice as far, as the stride-16 style layers of EfficientNet-Lite0 (large brush patterns) need.

One network per style: it is trained with the perceptual loss of dl_core.perceptual (train/style.py) and then
stylises any photo in one forward pass, ~1000x faster than optimising pixels (dl_core.style.gatys).
`channels` scales the width: (32, 64, 128) is Johnson's network; the bundled ones use (16, 32, 64), which runs
~3.5x faster on a CPU (benchmarks/style_speed.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn


@dataclass
class StyleNetConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # at full, 1/2, 1/4 (and 1/8) resolution: 3 or 4 widths
    residual_blocks: int = 5
    style_name: str = ""  # the painting it was trained on (shown in the app)
    # The perceptual loss it was trained with (dl_core.perceptual.LossWeights fields + the feature network):
    # `train/style.py evaluate` and the app's live tab score with exactly this loss.
    loss: dict = field(default_factory=dict)
    # Channels of each feature layer whose style Gram matrix is stored with the weights (buffers
    # `style_grams.<layer>`), so the painting's style target travels with the model: the app can run Gatys
    # against a bundled style and draw its Gram matrices without the painting itself.
    gram_channels: dict = field(default_factory=dict)


class ConvLayer(nn.Sequential):
    """Reflection pad -> conv (-> instance norm -> ReLU)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, norm_and_relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride)]
        if norm_and_relu:
            layers += [nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + (conv -> IN -> ReLU -> conv -> IN)(x): learns a change to the features, keeps the image's layout."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, channels, 3, norm_and_relu=False),
                                  nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv: every output pixel sees the same number of inputs (no checkerboard)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = ConvLayer(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class StyleNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="fastai-part2-demos",
    tags=["style-transfer", "fast-neural-style"],
    paper_url="https://arxiv.org/abs/1603.08155",
):
    def __init__(self, config: StyleNetConfig | dict | None = None):
        super().__init__()
        if isinstance(config, dict):  # PyTorchModelHubMixin hands the config.json back as a dict
            config = StyleNetConfig(**{**config, "channels": tuple(config.get("channels", (32, 64, 128)))})
        self.config = config = config or StyleNetConfig()
        self.style_grams = nn.Module()  # a plain holder: its buffers are saved and strictly loaded with the weights
        for layer, channels in config.gram_channels.items():
            self.style_grams.register_buffer(layer, torch.zeros(1, channels, channels))
        widths = tuple(config.channels)
        if len(widths) not in (3, 4):
            raise ValueError(f"channels needs 3 or 4 widths, not {widths}")
        self.scale = 2 ** (len(widths) - 1)  # the encoder's total downsampling
        down = [ConvLayer(c_in, c_out, 3, stride=2) for c_in, c_out in zip(widths, widths[1:])]
        up = [UpsampleConv(c_in, c_out) for c_in, c_out in zip(widths[::-1], widths[::-1][1:])]
        self.encoder = nn.Sequential(ConvLayer(3, widths[0], 9), *down)
        self.residuals = nn.Sequential(*[ResidualBlock(widths[-1]) for _ in range(config.residual_blocks)])
        self.decoder = nn.Sequential(*up, ConvLayer(widths[0], 3, 9, norm_and_relu=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1]. Any H, W: pads to a multiple of 4 (8), crops back."""
        h, w = images.shape[-2:]
        # The stride-2 convs and x2 upsamples need H, W divisible by `scale`, and the deepest level's reflection
        # padding needs at least 2 px there; reflect-padding the image itself needs pads smaller than the image.
        pad_h, pad_w = max(-h % self.scale, 2 * self.scale - h), max(-w % self.scale, 2 * self.scale - w)
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(images, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else images
        return torch.sigmoid(self.transform(x)[..., :h, :w])  # (B, 3, H, W); sigmoid: in range, with a live gradient

    def transform(self, padded: torch.Tensor) -> torch.Tensor:
        """The convolutions alone: (B, 3, H, W) in [0, 1], H and W multiples of `scale` -> logits (B, 3, H, W).
        A method of its own so that dl_core.fast can compile it for any size: the padding arithmetic stays outside."""
        return self.decoder(self.residuals(self.encoder(padded * 2 - 1)))  # the network works on [-1, 1]

    def set_style_grams(self, grams: dict[str, torch.Tensor]) -> None:
        for layer, gram in grams.items():
            getattr(self.style_grams, layer).copy_(gram.reshape(1, *gram.shape[-2:]))

    def get_style_grams(self) -> dict[str, torch.Tensor]:
        return {layer: getattr(self.style_grams, layer).float() for layer in self.config.gram_channels}
