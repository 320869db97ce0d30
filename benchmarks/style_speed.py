"""Lessons 13-14 speed on this machine: the instant network vs the reference, and live Gatys at 256 px.

    python -m benchmarks.style_speed [--weights weights/style-starry_night] [--repeats 15]      # from the repository root

Instant: our bundled network (channels 16/32/64) on a 512x512 photo, side by side with the reference
TransformerNet of pytorch/examples' fast_neural_style (channels 32/64/128, same input, random weights; re-typed
below as `ReferenceTransformerNet`), and the whole tab handler (decode, resize, network, encode).
Live: the time to the first streamed image and to 100 steps of Gatys at 256 px, as the tab runs it; with
--vgg also 100 steps over VGG16 (the online choice; random weights here, which cost the same as ImageNet's).
Targets (issue 4, 2 CPU cores): instant at 512 px <= 400 ms; first live image <= 2 s; 100 live steps <= 10 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from benchmarks.timing import median_ms, print_latency_table


class ReferenceTransformerNet(nn.Module):
    """pytorch/examples fast_neural_style/neural_style/transformer_net.py, re-typed: Johnson et al.'s network."""

    class ConvLayer(nn.Module):
        def __init__(self, c_in, c_out, kernel, stride):
            super().__init__()
            self.pad = nn.ReflectionPad2d(kernel // 2)
            self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

        def forward(self, x):
            return self.conv(self.pad(x))

    class ResidualBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            conv, norm = ReferenceTransformerNet.ConvLayer, nn.InstanceNorm2d
            self.conv1, self.in1 = conv(channels, channels, 3, 1), norm(channels, affine=True)
            self.conv2, self.in2 = conv(channels, channels, 3, 1), norm(channels, affine=True)

        def forward(self, x):
            out = torch.relu(self.in1(self.conv1(x)))
            return self.in2(self.conv2(out)) + x

    class UpsampleConvLayer(nn.Module):
        def __init__(self, c_in, c_out, kernel, stride, upsample=None):
            super().__init__()
            self.upsample = upsample
            self.conv = ReferenceTransformerNet.ConvLayer(c_in, c_out, kernel, stride)

        def forward(self, x):
            if self.upsample:
                x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
            return self.conv(x)

    def __init__(self):
        super().__init__()
        conv, res, up = self.ConvLayer, self.ResidualBlock, self.UpsampleConvLayer
        self.conv1, self.in1 = conv(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = conv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = conv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*[res(128) for _ in range(5)])
        self.deconv1, self.in4 = up(128, 64, 3, 1, upsample=2), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = up(64, 32, 3, 1, upsample=2), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = conv(32, 3, 9, 1)

    def forward(self, x):
        y = torch.relu(self.in1(self.conv1(x)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="weights/style-starry_night")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--live-runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vgg", action="store_true", help="also time live Gatys over VGG16 (random weights)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    os.environ["HUB_REPO_STYLE_STARRY_NIGHT"] = str(Path(args.weights).resolve())  # a local folder is allowed
    from demos import style

    style_extractor = style.feature_extractor
    model = style.MODELS["starry_night"].get()
    reference = ReferenceTransformerNet().eval()
    x = torch.rand(1, 3, 512, 512)
    rng = np.random.default_rng(0)
    photo = Path(tempfile.mkdtemp()) / "photo.jpg"
    Image.fromarray((rng.random((512, 512, 3)) * 255).astype(np.uint8)).save(photo, quality=90)

    with torch.inference_mode():
        reference_ms = median_ms(lambda: reference(x), args.repeats)
        ours_ms = median_ms(lambda: model(x), args.repeats)
        x256 = torch.rand(1, 3, 256, 256)
        ours_256_ms = median_ms(lambda: model(x256), args.repeats)
    handler_ms = median_ms(lambda: style.stylise_photo(str(photo), "Starry Night (Van Gogh)", 512), args.repeats)

    first_image, hundred_steps = [], []
    settings = style.LiveSettings(size=256, steps=100, report_every=10)
    list(style.live_style_transfer(str(photo), "Starry Night (Van Gogh)", None, style.LiveSettings(size=256, steps=2)))  # warm-up
    for _ in range(args.live_runs):
        start = time.perf_counter()
        for i, _view in enumerate(style.live_style_transfer(str(photo), "Starry Night (Van Gogh)", None, settings)):
            if i == 0:
                first_image.append((time.perf_counter() - start) * 1000)
        hundred_steps.append((time.perf_counter() - start) * 1000)

    vgg_rows = []
    if args.vgg:
        from dl_core.perceptual import FeatureExtractor

        random_vgg = FeatureExtractor("vgg16", pretrained=False)
        style.feature_extractor = lambda backbone, *a, **k: random_vgg if backbone == "vgg16" else style_extractor(backbone, *a, **k)
        vgg_settings = style.LiveSettings(size=256, steps=100, report_every=10, backbone="vgg16",
                                          layers=style.default_layers("vgg16"))
        vgg_runs = []
        for _ in range(args.live_runs):
            start = time.perf_counter()
            list(style.live_style_transfer(str(photo), style.YOUR_PAINTING, str(photo), vgg_settings))
            vgg_runs.append((time.perf_counter() - start) * 1000)
        vgg_rows = [("live Gatys 256 px over VGG16 (relu1_2-4_3): 100 steps", statistics.median(vgg_runs), None)]

    params = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    print(f"\n{args.threads} threads; ours {params(model):.2f}M parameters, reference {params(reference):.2f}M\n")
    live_100 = statistics.median(hundred_steps)
    print_latency_table([
        ("reference TransformerNet (32/64/128), 512x512", reference_ms, None),
        ("our style network, 256x256", ours_256_ms, None),
        (f"our style network ({'/'.join(map(str, model.config.channels))}), 512x512", ours_ms, 400),
        ("instant tab handler, 512-px JPEG end to end", handler_ms, 400),
        ("live Gatys 256 px: first streamed image", statistics.median(first_image), 2000),
        ("live Gatys 256 px: 100 steps, streamed", live_100, 10000),
        *vgg_rows,
    ], baseline_ms=reference_ms, baseline_name="reference")
    print(f"\nlesson 14's point: 300 Gatys steps at 256 px take ~{3 * live_100 / 1000:.1f} s, the network {ours_256_ms:.0f} ms: "
          f"{3 * live_100 / ours_256_ms:.0f}x faster")


if __name__ == "__main__":
    main()
