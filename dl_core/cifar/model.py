"""Lesson 12: DarkNet, a residual network built from scratch for CIFAR-10's 32-pixel images.

Read top to bottom:
  DarknetConfig   everything config.json holds: blocks per group, width, strides, classes, pixel statistics
  conv_layer      bias-free conv -> BatchNorm (momentum 0.01) -> LeakyReLU(0.1): the network's only building block
  ResLayer        1x1 bottleneck to half the channels, 3x3 back up, added to the input
  Darknet         stem, then groups (a stride-2 conv_layer that doubles the channels, then ResLayers), then
                  adaptive average pooling and one linear layer

The lesson's network is `DarknetConfig()` (num_blocks [1, 2, 4, 6, 3], nf 32, strides 2, 1, 2, 2, 2: 32 px in, 2 px
at the last group, 1024 channels, 31 M parameters). The bundled CPU-sized network is the same code with fewer
groups and the first downsampling moved one group later (`DarknetConfig(num_blocks=[1, 2, 2, 2], strides=[1, 2, 2, 2])`):
64 channels still see all 32x32 pixels, which on these tiny images buys more accuracy than depth at 2x2 does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# the lesson's per-channel statistics of CIFAR-10's training images (pixels in [0, 1])
CIFAR10_MEAN = [0.4914, 0.48216, 0.44653]
CIFAR10_STD = [0.24703, 0.24349, 0.26159]


def lesson_strides(n_groups: int) -> list[int]:
    """The lesson's `stride=2-(i==1)`: every group halves the resolution except the second."""
    return [2 - (i == 1) for i in range(n_groups)]


@dataclass
class DarknetConfig:
    num_blocks: list[int] = field(default_factory=lambda: [1, 2, 4, 6, 3])  # ResLayers per group
    nf: int = 32  # stem width; every group doubles it
    strides: list[int] | None = None  # stride of each group's first conv; None: the lesson's 2, 1, 2, 2, ...
    classes: list[str] = field(default_factory=lambda: list(CIFAR10_CLASSES))
    mean: list[float] = field(default_factory=lambda: list(CIFAR10_MEAN))
    std: list[float] = field(default_factory=lambda: list(CIFAR10_STD))
    image_size: int = 32  # what it was trained on; any size works (the pooling is adaptive)
    # the lesson's BatchNorm momentum: running statistics average over ~100 batches, right for a 30-epoch run;
    # a run of only a hundred batches (the training lab's) needs 0.1, or its running statistics lag far behind
    bn_momentum: float = 0.01

    def __post_init__(self):
        if self.strides is None:
            self.strides = lesson_strides(len(self.num_blocks))
        if len(self.strides) != len(self.num_blocks):
            raise ValueError(f"{len(self.num_blocks)} groups but {len(self.strides)} strides")

    @property
    def widths(self) -> list[int]:
        """Channels after each group: nf*2, nf*4, ..."""
        return [self.nf * 2 ** (i + 1) for i in range(len(self.num_blocks))]


def conv_layer(ni: int, nf: int, ks: int = 3, stride: int = 1, bn_momentum: float = 0.01) -> nn.Sequential:
    # no bias: the BatchNorm that follows subtracts the mean anyway
    return nn.Sequential(
        nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False),
        nn.BatchNorm2d(nf, momentum=bn_momentum),
        nn.LeakyReLU(0.1, inplace=True),
    )


class ResLayer(nn.Module):
    def __init__(self, ni: int, bn_momentum: float = 0.01):
        super().__init__()
        self.squeeze = conv_layer(ni, ni // 2, ks=1, bn_momentum=bn_momentum)  # 1x1 bottleneck: half the channels, a quarter of the cost
        self.expand = conv_layer(ni // 2, ni, ks=3, bn_momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # out of place, unlike the lesson's x.add_(): x is the in-place LeakyReLU's output, which autograd keeps
        return x + self.expand(self.squeeze(x))


class Darknet(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["image-classification", "cifar10"]):
    def __init__(self, config: DarknetConfig | dict):
        super().__init__()
        # from_pretrained passes config.json's dict; unknown keys raise TypeError (a mismatched checkpoint)
        cfg = self.config = config if isinstance(config, DarknetConfig) else DarknetConfig(**config)
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1), persistent=False)
        bn = cfg.bn_momentum
        self.stem = conv_layer(3, cfg.nf, bn_momentum=bn)
        groups, ni = [], cfg.nf
        for n_blocks, stride, nf in zip(cfg.num_blocks, cfg.strides, cfg.widths):
            groups.append(nn.Sequential(conv_layer(ni, nf, stride=stride, bn_momentum=bn),
                                        *[ResLayer(nf, bn_momentum=bn) for _ in range(n_blocks)]))
            ni = nf
        self.groups = nn.ModuleList(groups)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(ni, len(cfg.classes))

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """What each stage sees: the stem's output, then every group's. images (B, 3, H, W) in [0, 1]."""
        x = self.stem((images - self.mean) / self.std)  # (B, nf, H, W)
        outputs = [x]
        for group in self.groups:
            x = group(x)  # (B, widths[i], H / prod(strides[:i+1]), ...)
            outputs.append(x)
        return outputs

    def logits(self, last_stage: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, C, h, w) -> logits (B, n_classes): the pooled head."""
        return self.head(self.pool(last_stage).flatten(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images (B, 3, H, W) in [0, 1] -> logits (B, n_classes)
        return self.logits(self.stages(images)[-1])


def n_parameters(config: DarknetConfig) -> int:
    return sum(p.numel() for p in Darknet(config).parameters())
