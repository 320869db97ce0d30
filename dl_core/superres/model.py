"""The lesson-14 super-resolution network: an EDSR-style `SrResnet` with sub-pixel (pixel-shuffle) up-sampling.

Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution" (EDSR, https://arxiv.org/abs/1707.02921)
as the lesson builds it, with Shi et al.'s sub-pixel convolution (https://arxiv.org/abs/1609.05158) and Aitken et
al.'s ICNR initialisation (https://arxiv.org/abs/1707.02937):

    low-res (B, 3, h, w) in [0, 1]
      -> minus the mean colour -> 3x3 conv to nf channels                            head       (B, nf, h, w)
      -> n_blocks x [x + res_scale * (conv -> ReLU -> conv)(x)] -> 3x3 conv, + head   body       (B, nf, h, w)
      -> log2(scale) x [3x3 conv to 4 nf (ICNR) -> PixelShuffle(2)]                    up-sample  (B, nf, s h, s w)
      -> 3x3 conv to 3 -> plus the mean colour                                         tail       (B, 3, s h, s w)

All the work happens at the low resolution; only the last step runs at the output's. The residual blocks have no
batch norm (EDSR's finding: it removes the range flexibility a pixel regressor needs and costs memory), and each
block's change is scaled by `res_scale` (0.1) so that a deep stack starts close to the identity and trains stably.
The lesson's version ends with a BatchNorm after the up-sampler; EDSR's does not, nor does this one.

A pixel shuffle turns (B, 4C, h, w) into (B, C, 2h, 2w): channel 4c + 2i + j becomes output pixel (2y + i, 2x + j)
of channel c. Randomly initialised, the four sub-kernels of a channel differ, and the output starts with a 2-px
checkerboard that training must unlearn. ICNR initialises one kernel per output channel and copies it to its four
sub-pixels: at initialisation the layer is a convolution followed by nearest-neighbour up-sampling, with no
checkerboard.

A x4 network is grown from a trained x2 one (`grow`): head, body and the first up-sampling step are copied, the
second step starts fresh (ICNR), as the lesson does with `load_state_dict(strict=False)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

SCALES = (2, 4)
# The RGB mean of natural photos (DIV2K's, as EDSR uses): subtracted on the way in, added back on the way out, so
# the network's convolutions work on zero-centred values and its output starts as a mid-grey-free residual.
RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass
class SuperResConfig:
    scale: int = 2  # 2 or 4: one pixel-shuffle step per factor of 2
    nf: int = 64  # channels throughout
    n_blocks: int = 8  # residual blocks
    res_scale: float = 0.1  # each residual block's change is multiplied by this

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {self.scale}")


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


def icnr_(weight: torch.Tensor, upscale: int = 2, init=nn.init.kaiming_normal_) -> torch.Tensor:
    """Initialise a conv weight (upscale^2 * C, C_in, k, k) that feeds nn.PixelShuffle(upscale) so that the
    upscale^2 sub-kernels of every output channel are equal: conv + nearest-neighbour up-sampling at the start."""
    c_out, c_in, kh, kw = weight.shape
    sub = upscale * upscale
    if c_out % sub:
        raise ValueError(f"{c_out} output channels cannot feed PixelShuffle({upscale})")
    kernel = init(torch.empty(c_out // sub, c_in, kh, kw))
    with torch.no_grad():
        weight.copy_(kernel.repeat_interleave(sub, dim=0))  # channel c*sub + k <- kernel c, for every sub-pixel k
    return weight


class ResBlock(nn.Module):
    """x + res_scale * (conv -> ReLU -> conv)(x), no batch norm."""

    def __init__(self, nf: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(conv3x3(nf, nf), nn.ReLU(inplace=True), conv3x3(nf, nf))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class UpsampleStep(nn.Sequential):
    """x2: a 3x3 conv to 4 nf channels (ICNR-initialised unless icnr=False) and PixelShuffle(2)."""

    def __init__(self, nf: int, icnr: bool = True):
        conv = conv3x3(nf, 4 * nf)
        if icnr:
            icnr_(conv.weight)
        nn.init.zeros_(conv.bias)
        super().__init__(conv, nn.PixelShuffle(2))


class SrResnet(nn.Module, PyTorchModelHubMixin):
    def __init__(self, config: SuperResConfig | dict | None = None):
        super().__init__()
        config = SuperResConfig(**config) if isinstance(config, dict) else (config or SuperResConfig())
        self.config = config
        nf = config.nf
        self.head = conv3x3(3, nf)
        self.body = nn.Sequential(*[ResBlock(nf, config.res_scale) for _ in range(config.n_blocks)], conv3x3(nf, nf))
        self.upsample = nn.Sequential(*[UpsampleStep(nf) for _ in range(int(math.log2(config.scale)))])
        self.tail = conv3x3(nf, 3)
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, low_res: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] -> (B, 3, scale h, scale w), not clamped (clamp for display; losses see it raw)."""
        # channels-last is oneDNN's native layout: CPU convolutions run ~12% faster in it (a no-op when already so)
        low_res = low_res.contiguous(memory_format=torch.channels_last)
        x = self.head(low_res - self.rgb_mean)  # (B, nf, h, w)
        x = x + self.body(x)  # (B, nf, h, w): the long skip, EDSR's
        x = self.upsample(x)  # (B, nf, s h, s w)
        # The last conv stays fp32 under a bf16 autocast: bf16 keeps 8 significant bits, so an output near 0.5 would
        # be rounded by up to half an 8-bit grey level; it is 2% of the network's work.
        with torch.autocast(x.device.type, enabled=False):
            return self.tail(x.float()) + self.rgb_mean  # (B, 3, s h, s w)


def grow(model: SrResnet, scale: int = 4) -> SrResnet:
    """A x`scale` network whose head, body, tail and first up-sampling steps are `model`'s; the extra steps are
    new (ICNR). The lesson's progressive resizing: x4 starts from what x2 learnt."""
    if scale <= model.config.scale:
        raise ValueError(f"grow to a larger scale than x{model.config.scale}")
    bigger = SrResnet(SuperResConfig(**{**vars(model.config), "scale": scale}))
    missing, unexpected = bigger.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("upsample.") for k in missing), (missing, unexpected)
    return bigger


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

