"""Does SWAG activation smoothing help style transfer on EfficientNet-Lite0 features? Measured, not assumed.

    python -m benchmarks.style_quality [--steps 200] [--photos 3]          # from the repository root
    python -m benchmarks.style_quality --networks weights/style-starry_night runs/style-raw/style-starry_night

Runs Gatys pixel optimisation (dl_core.style.gatys, same weights and steps) for each painting x photo with raw
features and with softmax-smoothed features (Wang et al., CVPR 2021), then scores the results with measures
that do not depend on either feature space (a loss measured in its own features would favour itself):
  colour   sliced Wasserstein distance between the RGB pixel distributions of result and painting (lower: closer colours)
  texture  sliced Wasserstein distance between mean-removed 7x7 luminance patches of result and painting, at
           full and half resolution (lower: brush strokes / local structure closer to the painting's)
  content  correlation of the result's and the photo's edge maps (Sobel magnitude at 64 px; higher: layout kept)
Also prints the "peakiness" the paper blames: the share of a layer's activation energy in its top 1% of units.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from dl_core.paths import data_path
from dl_core.perceptual import FeatureExtractor, LossWeights, StyleLoss
from dl_core.photos import list_images, load_photo
from dl_core.style.data import default_heldout
from dl_core.style.gatys import run_pixels


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two point clouds (N, D) and (M, D)."""
    g = torch.Generator().manual_seed(seed)
    directions = F.normalize(torch.randn(a.shape[1], projections, generator=g), dim=0)
    n = min(len(a), len(b), 4096)
    pa = (a[torch.randperm(len(a), generator=g)[:n]] @ directions).sort(0).values
    pb = (b[torch.randperm(len(b), generator=g)[:n]] @ directions).sort(0).values
    return float((pa - pb).abs().mean())


def colour_distance(image: torch.Tensor, style: torch.Tensor) -> float:
    return sliced_wasserstein(image[0].reshape(3, -1).T, style[0].reshape(3, -1).T)


def luminance(image: torch.Tensor) -> torch.Tensor:
    return (image * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)


def texture_distance(image: torch.Tensor, style: torch.Tensor) -> float:
    total = 0.0
    for scale in (1.0, 0.5):
        patches = []
        for x in (image, style):
            y = luminance(F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True) if scale != 1 else x)
            p = F.unfold(y, 7, stride=2)[0].T  # (positions, 49)
            patches.append(p - p.mean(1, keepdim=True))
        total += sliced_wasserstein(*patches)
    return total / 2


def edge_map(image: torch.Tensor) -> torch.Tensor:
    y = F.interpolate(luminance(image), size=(64, 64), mode="bilinear", antialias=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(y, kx, padding=1), F.conv2d(y, kx.transpose(2, 3), padding=1)
    return (gx**2 + gy**2).sqrt().flatten()


def content_kept(image: torch.Tensor, photo: torch.Tensor) -> float:
    a, b = edge_map(image), edge_map(photo)
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def peakiness(extractor: FeatureExtractor, image: torch.Tensor, layers) -> float:
    """Mean over layers of the share of activation energy held by the top 1% of activations."""
    with torch.no_grad():
        feats = extractor(image, layers)
    shares = []
    for f in feats.values():
        energy = extractor.smooth(f).flatten().pow(2).sort(descending=True).values
        shares.append(float(energy[: max(1, len(energy) // 100)].sum() / energy.sum()))
    return statistics.mean(shares)


def compare_networks(folders: list[str], size: int) -> None:
    """The same measures on trained networks' outputs (held-out CSet5 + CSet14), e.g. raw- vs smoothed-loss runs."""
    from dl_core.hub import load_model
    from dl_core.style.model import StyleNet

    photos = list_images(default_heldout())
    print(f"\nTrained networks on {len(photos)} held-out photos at {size} px (medians)\n")
    print("| network | loss features | colour dist ↓ | texture dist ↓ | content edge corr ↑ |")
    print("|---|---|---|---|---|")
    for folder in folders:
        model = load_model(StyleNet, folder)
        name = model.config.style_name.replace("_", "-")
        paintings = data_path("style")
        painting_file = next(paintings.glob(f"{name}*.jpg"), None) or next(paintings.glob(f"{model.config.style_name}*.jpg"))
        painting = load_photo(painting_file, size)
        scores = {"colour": [], "texture": [], "content": []}
        for path in photos:
            photo = load_photo(path, size)
            with torch.no_grad():
                out = model(photo)
            scores["colour"].append(colour_distance(out, painting))
            scores["texture"].append(texture_distance(out, painting))
            scores["content"].append(content_kept(out, photo))
        loss = model.config.loss
        features = f"softmax T={loss['temperature']:g}" if loss.get("smoothing") else "raw"
        print(f"| {folder} | {features} | {statistics.median(scores['colour']):.3f} | {statistics.median(scores['texture']):.4f} | "
              f"{statistics.median(scores['content']):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["raw:15", "softmax:15", "softmax:60", "softmax:240"],
                        help="FEATURES:STYLE_WEIGHT[:TEMPERATURE], FEATURES = raw | softmax")
    parser.add_argument("--networks", nargs="+", help="instead: score these trained weight folders' outputs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.networks:
        return compare_networks(args.networks, args.size)
    photos = list_images([data_path("superres", "CSet5")])[: args.photos]
    paintings = list_images([data_path("style")])
    variants = {}  # label -> (extractor, loss weights)
    for spec in args.variants:
        features, style_weight, *temperature = spec.split(":")
        smoothing = None if features == "raw" else "softmax"
        t = float(temperature[0]) if temperature else 1.0
        label = f"{features}, style weight {style_weight}" + (f", T={t:g}" if smoothing else "")
        variants[label] = (FeatureExtractor(smoothing=smoothing, temperature=t), LossWeights(style_weight=float(style_weight)))
    results = {name: {"colour": [], "texture": [], "content": [], "peak": []} for name in variants}
    for painting_path in paintings:
        painting = load_photo(painting_path, args.size)
        for photo_path in photos:
            photo = load_photo(photo_path, args.size)
            for name, (extractor, weights) in variants.items():
                loss = StyleLoss.from_image(extractor, painting, weights)
                result = run_pixels(loss, photo, steps=args.steps).image
                r = results[name]
                r["colour"].append(colour_distance(result, painting))
                r["texture"].append(texture_distance(result, painting))
                r["content"].append(content_kept(result, photo))
                r["peak"].append(peakiness(extractor, painting, weights.style_layers))
            print(f"{painting_path.stem} x {photo_path.stem}: " + ", ".join(
                f"{n} colour {r['colour'][-1]:.3f} texture {r['texture'][-1]:.3f} content {r['content'][-1]:.2f}"
                for n, r in results.items()), flush=True)
    baseline_colour = statistics.median(colour_distance(load_photo(p, args.size),
                                                        load_photo(s, args.size))
                                        for s in paintings for p in photos)
    print(f"\nGatys, {args.steps} Adam steps at {args.size} px, {len(paintings)} paintings x {len(photos)} photos "
          f"(medians; the untouched photos' colour distance to the paintings: {baseline_colour:.3f})\n")
    print("| features, weights | colour dist ↓ | texture dist ↓ | content edge corr ↑ | top-1% energy share (painting) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {statistics.median(r['colour']):.3f} | {statistics.median(r['texture']):.4f} | "
              f"{statistics.median(r['content']):.3f} | {statistics.median(r['peak']):.3f} |")


if __name__ == "__main__":
    main()
