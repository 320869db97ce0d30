"""GAN quality measured, not eyeballed: the Fréchet distance in EfficientNet-Lite0's pooled features (FD-Lite0).

Heusel et al.'s FID (https://arxiv.org/abs/1706.08500) fits a Gaussian to each image set's Inception-v3 pool
features and reports the Fréchet (2-Wasserstein) distance between the two Gaussians:

    FD = |mu_1 - mu_2|^2 + trace(C_1 + C_2 - 2 (C_1 C_2)^(1/2))

Inception-v3's weights cannot be had offline here, so this is the same formula on the 1280-d pooled features of
the ImageNet EfficientNet-Lite0 (the layer before its classifier). It is not FID: its numbers are on their own
scale, comparable only with other FD-Lite0 numbers at the same image size and sample sizes (the estimate grows as
the samples shrink, so every comparison here uses equal sample sizes on both sides).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dl_core.backbones import FrozenLite0

FEATURE_SIZE = 128  # images are resized to this side before the features: 64-px images hold nothing more at 224


class PooledFeatures(FrozenLite0):
    """Images in [-1, 1] (B, 3, H, W) -> EfficientNet-Lite0's pooled 1280-d features (B, 1280), ImageNet weights."""

    def __init__(self, size: int = FEATURE_SIZE, pretrained: bool = True):
        super().__init__(size, pretrained)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward((images.float() + 1) / 2)[0]  # [-1, 1] -> [0, 1]


def features_of(extractor: PooledFeatures, images: torch.Tensor, bs: int = 100) -> torch.Tensor:
    """Features of uint8 (N, 3, H, W) or float [-1, 1] images, in batches: (N, 1280) float64."""
    out = []
    for start in range(0, len(images), bs):
        batch = images[start:start + bs]
        if batch.dtype == torch.uint8:
            batch = batch.float() / 127.5 - 1
        out.append(extractor(batch).double())
    return torch.cat(out)


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of (N, D) features, in float64."""
    features = features.double()
    if len(features) < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples per set")
    return features.mean(0), torch.cov(features.T)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(stats_1: tuple[torch.Tensor, torch.Tensor], stats_2: tuple[torch.Tensor, torch.Tensor]) -> float:
    """|mu_1 - mu_2|^2 + tr(C_1) + tr(C_2) - 2 tr((C_1 C_2)^(1/2)).

    tr((C_1 C_2)^(1/2)) is computed as tr((S C_2 S)^(1/2)) with S = C_1^(1/2): the same eigenvalues, but of a
    symmetric positive semi-definite matrix, so `eigh` is exact and stable where a general sqrtm is not."""
    (mu_1, cov_1), (mu_2, cov_2) = stats_1, stats_2
    root_1 = _sqrt_psd(cov_1)
    cross = torch.linalg.eigvalsh(root_1 @ cov_2 @ root_1).clamp(min=0).sqrt().sum()
    distance = (mu_1 - mu_2).square().sum() + cov_1.trace() + cov_2.trace() - 2 * cross
    return max(float(distance), 0.0)


def fd_between(extractor: PooledFeatures, images_1: torch.Tensor, images_2: torch.Tensor) -> float:
    return frechet_distance(gaussian_stats(features_of(extractor, images_1)), gaussian_stats(features_of(extractor, images_2)))


@torch.no_grad()
def generate(generator: nn.Module, n: int, seed: int = 0, bs: int = 250) -> torch.Tensor:
    """n images from seeded noise, uint8 (n, 3, H, W): the same n images every time for the same seed."""
    from dl_core.gan.data import to_uint8

    noise = torch.randn(n, generator.config.nz, generator=torch.Generator().manual_seed(seed))
    generator.eval()
    return torch.cat([to_uint8(generator(noise[i:i + bs])) for i in range(0, n, bs)])


def wgan_scores(generator: nn.Module, train_images: torch.Tensor, heldout_images: torch.Tensor, n: int = 2000,
                seed: int = 0, extractor: PooledFeatures | None = None) -> dict:
    """{"fd", "fd_real", "n"}: FD-Lite0 of n generated images against the held-out real ones, and of n training
    images against the same held-out ones (the floor a perfect generator would reach with n samples: both sides
    then have the same sample sizes and so the same bias)."""
    extractor = extractor or PooledFeatures()
    n = min(n, len(train_images))
    heldout = gaussian_stats(features_of(extractor, heldout_images))
    sample = np.sort(np.random.default_rng(seed).choice(len(train_images), n, replace=False))
    real = gaussian_stats(features_of(extractor, train_images[torch.from_numpy(sample)]))
    fake = gaussian_stats(features_of(extractor, generate(generator, n, seed)))
    return {"fd": round(frechet_distance(fake, heldout), 3), "fd_real": round(frechet_distance(real, heldout), 3), "n": n}


# --- CycleGAN ------------------------------------------------------------------------------------------------
TILE = 120  # frames are scored as tiles of this side (12 per 480x360 frame): more samples for the Gaussians


def load_frames(paths, max_side: int = 480) -> list[torch.Tensor]:
    """Photos as float (3, H, W) in [-1, 1], reduced to `max_side` and cropped to multiples of 4 (the generator's)."""
    from PIL import Image

    from dl_core.gan.data import to_unit
    from dl_core.photos import fit_within

    frames = []
    for path in paths:
        with Image.open(path) as image:
            image = fit_within(image.convert("RGB"), max_side)
        array = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
        frames.append(to_unit(array[:, : array.shape[1] // 4 * 4, : array.shape[2] // 4 * 4]))
    return frames


def tiles(frame: torch.Tensor, side: int = TILE) -> torch.Tensor:
    """The non-overlapping side x side tiles of a (3, H, W) frame: (n, 3, side, side); a frame smaller than a tile
    gives one square as large as it holds."""
    c, h, w = frame.shape
    side = min(side, h, w)
    grid = frame[:, : h // side * side, : w // side * side].unfold(1, side, side).unfold(2, side, side)
    return grid.permute(1, 2, 0, 3, 4).reshape(-1, c, side, side)


@torch.no_grad()
def cyclegan_scores(generators: nn.Module, source_paths, target_paths, direction: str = "a_to_b",
                    reference_paths=None, extractor: PooledFeatures | None = None) -> dict:
    """{"fd_translated", "fd_untranslated", "cycle_l1", "n"}: FD-Lite0 of the translated source frames' tiles and
    of the untranslated ones against the target frames' tiles, the mean |reconstruction - source| on a 0-1 scale,
    and the number of source tiles. With `reference_paths` (other real photos of the target domain, e.g. its
    training photos) also "fd_floor": their distance to the same target tiles, what a translator that produced
    real target photos would score with this many target tiles."""
    extractor = extractor or PooledFeatures()
    forward, backward = (generators.a_to_b, generators.b_to_a) if direction == "a_to_b" else (generators.b_to_a, generators.a_to_b)
    generators.eval()
    source, translated, errors = [], [], []
    for frame in load_frames(source_paths):
        fake = forward(frame[None]).clamp(-1, 1)
        errors.append(float((backward(fake).clamp(-1, 1) - frame[None]).abs().mean() / 2))
        source.append(tiles(frame))
        translated.append(tiles(fake[0]))

    def stats_of(paths):
        return gaussian_stats(features_of(extractor, torch.cat([tiles(f) for f in load_frames(paths)])))

    target = stats_of(target_paths)
    source_stats = gaussian_stats(features_of(extractor, torch.cat(source)))
    translated_stats = gaussian_stats(features_of(extractor, torch.cat(translated)))
    scores = {"fd_translated": round(frechet_distance(translated_stats, target), 3),
              "fd_untranslated": round(frechet_distance(source_stats, target), 3),
              "cycle_l1": round(float(np.mean(errors)), 4), "n": int(sum(len(t) for t in source))}
    if reference_paths:
        scores["fd_floor"] = round(frechet_distance(stats_of(reference_paths), target), 3)
    return scores
