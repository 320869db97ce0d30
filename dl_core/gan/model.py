"""Lesson 12's generative networks: the DCGAN generator and critic of the WGAN, and CycleGAN's ResNet generator and
70x70 PatchGAN.

WGAN (Arjovsky et al. 2017, https://arxiv.org/abs/1701.07875) on the DCGAN architecture (Radford et al. 2015,
https://arxiv.org/abs/1511.06434), as the lesson's `wgan.ipynb` builds it:

    noise (B, nz, 1, 1)
      -> ConvT 4x4 to c0 channels                     (B, c0, 4, 4)      c0 = ngf * size / 8 (512 for ngf 64, 64 px)
      -> [ConvT 4x4 stride 2, halve channels] x n     (B, c0/2^n, size/2, size/2)
      -> n_extra_layers x ConvT 3x3 stride 1          same shape
      -> ConvT 4x4 stride 2 to 3 channels, tanh       (B, 3, size, size) in [-1, 1]

each block ConvT (no bias) -> ReLU -> BatchNorm, the order fastai v0.7 used. The critic is the mirror image: conv 4x4
stride 2 (no norm) -> extra 3x3 layers -> [conv 4x4 stride 2, double channels] until 4x4 -> conv 4x4 to one number
per image, with LeakyReLU(0.2). It outputs a score, not a probability: no sigmoid.

CycleGAN (Zhu et al. 2017, https://arxiv.org/abs/1703.10593), the lesson's `cgan/` code (Johnson et al.'s generator):

    image (B, 3, H, W) in [-1, 1]
      -> reflect-pad 3, conv 7x7 to ngf, IN, ReLU        (B, ngf, H, W)
      -> 2 x [conv 3x3 stride 2, double channels, IN, ReLU]   (B, 4 ngf, H/4, W/4)
      -> n_blocks x residual block (reflect-pad, conv 3x3, IN, ReLU, reflect-pad, conv 3x3, IN)
      -> 2 x [ConvT 3x3 stride 2, halve channels, IN, ReLU]   (B, ngf, H, W)
      -> reflect-pad 3, conv 7x7 to 3, tanh              (B, 3, H, W)

and a PatchGAN discriminator: three stride-2 4x4 convs and two stride-1 ones; each output pixel judges one 70x70
patch of the input (for n_layers 3), so it asks "is this texture real?" rather than "is this whole scene real?".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

CRITIC_NORMS = ("batch", "layer", "none")  # batch: the lesson's (weight clipping); layer or none with the gradient penalty


@dataclass
class DCGANConfig:
    size: int = 64  # image side, a power of 2, >= 16
    nz: int = 100  # noise dimensions
    ngf: int = 64  # generator width: its widest layer has ngf * size / 8 channels
    ndf: int = 64  # critic width: its first layer has ndf channels
    n_extra_layers: int = 1  # 3x3 stride-1 layers at the largest resolution, in both networks
    critic_norm: str = "batch"  # normalisation in the critic's blocks, one of CRITIC_NORMS

    def __post_init__(self):
        if self.size < 16 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of 2 and at least 16, not {self.size}")
        if self.critic_norm not in CRITIC_NORMS:
            raise ValueError(f"critic_norm must be one of {CRITIC_NORMS}, not {self.critic_norm!r}")


def deconv_block(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=False), nn.ReLU(inplace=True),
                         nn.BatchNorm2d(c_out))


def conv_block(c_in: int, c_out: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, bias=False),
                               nn.LeakyReLU(0.2, inplace=True)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(c_out))
    elif norm == "layer":  # one group: normalises each sample over (C, H, W), so samples stay independent (the GP needs it)
        layers.append(nn.GroupNorm(1, c_out))
    return nn.Sequential(*layers)


def dcgan_init_(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module, PyTorchModelHubMixin):
    """The lesson's DCGAN_G: noise (B, nz) or (B, nz, 1, 1) -> images (B, 3, size, size) in [-1, 1]."""

    def __init__(self, config: DCGANConfig | dict | None = None):
        super().__init__()
        config = DCGANConfig(**config) if isinstance(config, dict) else (config or DCGANConfig())  # a dict: from config.json
        self.config = config
        channels = config.ngf * config.size // 8
        layers = [deconv_block(config.nz, channels, 4, 1, 0)]  # 1x1 -> 4x4
        side = 4
        while side < config.size // 2:
            layers.append(deconv_block(channels, channels // 2, 4, 2, 1))
            channels, side = channels // 2, side * 2
        layers += [deconv_block(channels, channels, 3, 1, 1) for _ in range(config.n_extra_layers)]
        self.body = nn.Sequential(*layers)
        self.to_rgb = nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False)
        dcgan_init_(self)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        x = noise.reshape(len(noise), self.config.nz, 1, 1)
        return torch.tanh(self.to_rgb(self.body(x)))

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n standard-normal noise vectors (n, nz) on the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.config.nz, generator=generator).to(device)


class DCGANCritic(nn.Module):
    """The lesson's DCGAN_D: images (B, 3, size, size) in [-1, 1] -> one unbounded score per image (B,)."""

    def __init__(self, config: DCGANConfig | dict | None = None):
        super().__init__()
        config = DCGANConfig(**config) if isinstance(config, dict) else (config or DCGANConfig())  # a dict: from config.json
        self.config = config
        layers = [conv_block(3, config.ndf, 4, 2, norm="none")]  # size -> size / 2
        layers += [conv_block(config.ndf, config.ndf, 3, 1, config.critic_norm) for _ in range(config.n_extra_layers)]
        channels, side = config.ndf, config.size // 2
        while side > 4:
            layers.append(conv_block(channels, channels * 2, 4, 2, config.critic_norm))
            channels, side = channels * 2, side // 2
        self.body = nn.Sequential(*layers)
        self.score = nn.Conv2d(channels, 1, 4, 1, 0, bias=False)  # 4x4 -> 1x1
        dcgan_init_(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.score(self.body(images)).flatten()


# --- CycleGAN ----------------------------------------------------------------------------------------------------
@dataclass
class CycleGANConfig:
    ngf: int = 32  # generator width (the paper's 64; the course's early notebook used 32)
    n_blocks: int = 6  # residual blocks (9 in the paper at 256 px, 6 at 128 px and in the early notebook)
    ndf: int = 64  # PatchGAN width
    n_layers: int = 3  # PatchGAN stride-2 layers: 3 gives 70x70 patches


class ResnetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(ngf: int, n_blocks: int) -> nn.Sequential:
    """(B, 3, H, W) -> (B, 3, H, W), both in [-1, 1]; H and W multiples of 4."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True)]
    for mult in (1, 2):  # down: ngf -> 2 ngf -> 4 ngf, H -> H/4
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * mult * 2),
                   nn.ReLU(inplace=True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for mult in (4, 2):  # up: 4 ngf -> 2 ngf -> ngf, H/4 -> H
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                   nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(inplace=True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    net = nn.Sequential(*layers)
    for m in net.modules():  # the CycleGAN code's init: N(0, 0.02)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


class CycleGenerators(nn.Module, PyTorchModelHubMixin):
    """The two translators of a CycleGAN: `a_to_b` (day -> dusk here) and `b_to_a`. What gets bundled."""

    def __init__(self, config: CycleGANConfig | dict | None = None):
        super().__init__()
        config = CycleGANConfig(**config) if isinstance(config, dict) else (config or CycleGANConfig())  # a dict: from config.json
        self.config = config
        self.a_to_b = resnet_generator(config.ngf, config.n_blocks)
        self.b_to_a = resnet_generator(config.ngf, config.n_blocks)

    def forward(self, images: torch.Tensor, direction: str = "a_to_b") -> torch.Tensor:
        return (self.a_to_b if direction == "a_to_b" else self.b_to_a)(images)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: (B, 3, H, W) -> (B, 1, ~H/8, ~W/8) scores, one per overlapping patch."""

    def __init__(self, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def receptive_field(n_layers: int = 3) -> int:
    """The side of the input patch one PatchGAN output sees: 70 for n_layers 3 (kernels 4; strides 2 x n_layers, 1, 1)."""
    strides = [2] * n_layers + [1, 1]
    field, jump = 1, 1
    for stride in strides:
        field += 3 * jump
        jump *= stride
    return field


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mb_fp16(module: nn.Module) -> float:
    return n_parameters(module) * 2 / 1e6

