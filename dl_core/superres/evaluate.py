"""Scoring super-resolution the way the literature does: PSNR and SSIM on the luma (Y of YCbCr, ITU-R BT.601,
16-235) of 8-bit images, with `scale` pixels shaved off every border, on images cropped to a multiple of `scale`.

    scores = evaluate_images(model, list_images([".../CSet5"]), scale=4)   # {"psnr", "ssim", "psnr_bicubic", ...}

For each high-resolution image: crop to a multiple of the scale, down-sample (bicubic, anti-aliased: data.downscale),
restore it with the network and with bicubic interpolation, round both to 8 bits, and compare their Y channels with
the original's.
    PSNR = 10 log10(255^2 / MSE)
    SSIM = mean over 11x11 Gaussian windows (sigma 1.5) of
           (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
           C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2                           (Wang et al. 2004)
"""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dl_core.photos import to_tensor
from dl_core.superres.data import bicubic_upscale, downscale, mod_crop

# RGB in [0, 1] -> Y in [16, 235] (BT.601, as MATLAB's rgb2ycbcr and every SR paper's evaluation script)
Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 255] -> (H, W) float64 luma in [16, 235]."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return 16.0 + rgb @ np.array(Y_WEIGHTS)


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels from every edge (the up-sampler cannot know what lies beyond them)."""
    return image[border:-border, border:-border] if border else image


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Structural similarity of two single-channel images (valid windows only, as Wang et al.'s MATLAB code)."""
    x = torch.from_numpy(np.asarray(a, np.float64))[None, None]
    y = torch.from_numpy(np.asarray(b, np.float64))[None, None]
    window = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def y_scores(restored: Image.Image, original: Image.Image, scale: int) -> tuple[float, float]:
    """(PSNR, SSIM) of two same-sized 8-bit RGB images on shaved Y."""
    y_restored = shave(rgb_to_y(np.asarray(restored)), scale)
    y_original = shave(rgb_to_y(np.asarray(original)), scale)
    return psnr(y_restored, y_original), ssim(y_restored, y_original)


def to_uint8_image(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float -> 8-bit RGB, rounded (as a saved PNG would be)."""
    array = tensor.detach().float().squeeze(0).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def self_ensemble(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Geometric self-ensemble (Lim et al. 2017, "EDSR+"): run the 8 flips and rotations of the input (the lesson's
    dihedral augmentation, now at test time), undo each on its output, and average. Same network, 8x the work."""
    outputs = []
    for quarter_turns in range(4):
        for mirrored in (False, True):
            view = torch.rot90(x, quarter_turns, (2, 3))
            view = view.flip(3) if mirrored else view
            out = model(view)
            out = out.flip(3) if mirrored else out
            outputs.append(torch.rot90(out, -quarter_turns, (2, 3)))
    return torch.stack(outputs).mean(0)


@torch.inference_mode()
def super_resolve(model: torch.nn.Module, low_res: Image.Image, ensemble: bool = False) -> Image.Image:
    """One 8-bit image through the network in fp32: the evaluation's path (the app's fast path is infer.py's).
    `ensemble`: average the 8 dihedral views (self_ensemble)."""
    x = to_tensor(low_res)[None]
    return to_uint8_image(self_ensemble(model, x) if ensemble else model(x))


def low_resolution_pair(image: Image.Image, scale: int) -> tuple[Image.Image, Image.Image]:
    """(original, low): the image cropped to a multiple of `scale` and its down-sampled copy, what a network restores."""
    original = mod_crop(image.convert("RGB"), scale)
    return original, downscale(original, scale)


def score_image(model: torch.nn.Module, original: Image.Image, scale: int, ensemble: bool = False) -> dict[str, float]:
    """Down-sample one image, restore it with the network and with bicubic, score both against the original."""
    original, low = low_resolution_pair(original, scale)
    net_psnr, net_ssim = y_scores(super_resolve(model, low, ensemble), original, scale)
    bic_psnr, bic_ssim = y_scores(bicubic_upscale(low, scale), original, scale)
    return {"psnr": net_psnr, "ssim": net_ssim, "psnr_bicubic": bic_psnr, "ssim_bicubic": bic_ssim}


def evaluate_images(model: torch.nn.Module, paths: Sequence[Path], scale: int, ensemble: bool = False) -> dict:
    """Mean scores over images (each image weighs the same, as in the literature), rounded for JSON."""
    if not paths:
        raise ValueError("no images to score")
    model = model.eval()
    started = time.perf_counter()
    per_image = [score_image(model, Image.open(p), scale, ensemble) for p in paths]
    means = {key: statistics.fmean(s[key] for s in per_image) for key in per_image[0]}
    return {"psnr": round(means["psnr"], 3), "ssim": round(means["ssim"], 4),
            "psnr_bicubic": round(means["psnr_bicubic"], 3), "ssim_bicubic": round(means["ssim_bicubic"], 4),
            "n": len(per_image), "seconds": round(time.perf_counter() - started, 1)}


def batch_psnr_y(restored: torch.Tensor, original: torch.Tensor, scale: int) -> torch.Tensor:
    """Per-image PSNR on shaved Y for batches in [0, 1] (B, 3, H, W), outputs rounded to 8 bits: the training
    monitor, the same formula as psnr() on tensors."""
    weights = torch.tensor(Y_WEIGHTS, device=restored.device).view(1, 3, 1, 1)
    y_restored = 16 + ((restored.float().clamp(0, 1) * 255).round() / 255 * weights).sum(1)
    y_original = 16 + (original.float() * weights).sum(1)
    diff = (y_restored - y_original)[:, scale:-scale, scale:-scale]
    return 10 * torch.log10(255**2 / diff.pow(2).mean((1, 2)).clamp_min(1e-10))
