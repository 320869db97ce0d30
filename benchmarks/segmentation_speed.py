"""Lesson 14 speed on this machine: one 480×360 street photo through the segmentation tab, alone and side by side.

    python -m benchmarks.segmentation_speed [--repeats 20]      # from the repository root

Timed as the tab serves it: demos/segmentation.py's handler (decode, network, masks, confidence map, table) plus
Gradio's own post-processing of its two AnnotatedImage outputs (the mask PNGs the browser receives), with the
handler's remembered results cleared before every call. The baseline, timed in the same rounds, is the same
network's bare forward pass in plain fp32 eager mode (contiguous tensors) on the same photo as a tensor; the tab runs
it channels-last (oneDNN's faster convolution kernels), also timed alone. Targets (issue 19, 2 CPU
cores): one photo end to end <= 300 ms; the side-by-side view (U-Net and skip-free network) <= 600 ms.
Needs the bundled weights; uses a CamVid validation photo where the data root has one, else a generated one.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.timing import interleaved_median_ms, print_latency_table


def street_photo(tmp: str) -> str:
    from demos.segmentation import camvid_samples

    samples = camvid_samples(1)
    if samples:
        return samples[0]
    from PIL import Image

    path = f"{tmp}/street.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds (default: %(default)s)")
    args = parser.parse_args()
    import tempfile

    import gradio as gr

    from demos import segmentation as tab
    from dl_core.hub import load_model
    from dl_core.images import load_rgb
    from dl_core.segmentation.model import SegmentationNet
    from torchvision.transforms.v2.functional import pil_to_tensor

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        photo = street_photo(tmp)
        unet, plain = tab.UNET.get(), tab.PLAIN.get()  # as the tab loads them: channels-last
        eager = load_model(SegmentationNet, tab.UNET.source.location)  # plain fp32 eager: contiguous tensors
        x = pil_to_tensor(load_rgb(photo).image)[None].float() / 255
        x_last = x.contiguous(memory_format=torch.channels_last)
        overlay = gr.AnnotatedImage()

        def tab_call(compare: bool):
            def call():
                tab._run_on_file.cache_clear()  # every call runs the networks, as a new photo does
                view = tab.segment_photo(photo, compare=compare)
                overlay.postprocess(view.unet)
                if view.plain is not None:
                    overlay.postprocess(view.plain)
            return call

        def forward(model, inputs):
            def call():
                with torch.inference_mode():
                    model(inputs)
            return call

        times = interleaved_median_ms({"eager": forward(eager, x), "unet": forward(unet, x_last),
                                       "plain": forward(plain, x_last), "one": tab_call(False), "both": tab_call(True)},
                                      repeats=args.repeats)
    print(f"one {x.shape[-1]}×{x.shape[-2]} photo ({photo}), median of {args.repeats} interleaved rounds; baseline: the "
          f"U-Net's bare fp32 eager forward pass\n")
    print_latency_table([("U-Net forward, fp32 eager (baseline)", times["eager"], None),
                         ("U-Net forward, channels-last (the tab's)", times["unet"], None),
                         ("skip-free forward, channels-last", times["plain"], None),
                         ("tab: one photo end to end (U-Net)", times["one"], 300),
                         ("tab: side by side (both networks)", times["both"], 600)], times["eager"], "eager")


if __name__ == "__main__":
    main()
