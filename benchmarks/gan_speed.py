"""Lesson 12 speed on this machine: a 4×4 grid of generated flowers, and CycleGAN on a 480×360 street photo.

    python -m benchmarks.gan_speed [--repeats 20]      # from the repository root

Rows, timed in the same interleaved rounds:
  generator   the bundled WGAN generator's bare forward pass on 16 noise vectors, plain fp32 eager (the baseline)
  grid tab    the tab's /flowers handler: seed, noise, generator, the grid image
  cycle       both CycleGAN generators on one 480×360 photo, bare fp32 eager (the baseline of the second table)
  cycle tab   the tab's /day_dusk handler: decode, day → dusk, back, the error heat map
Targets (issue 21, 2 CPU cores): the grid ≤ 100 ms; CycleGAN both directions ≤ 600 ms. Needs the bundled weights.
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from PIL import Image

from benchmarks.timing import interleaved_median_ms, print_latency_table


def street_photo(folder: str) -> str:
    """A held-out CamVid frame (480×360) where the data root has it, else a generated picture of that size."""
    from dl_core.gan.data import camvid_domains
    from dl_core.paths import data_path

    root = data_path("segmentation", "camvid")
    if root.is_dir():
        image = Image.open(camvid_domains(root)["test_a"][0]).convert("RGB")
    else:
        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8))
    path = f"{folder}/street.png"
    image.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds (default: %(default)s)")
    args = parser.parse_args()

    from demos import gan as tab

    torch.set_num_threads(2)
    network = tab.DEFAULT_WGAN
    generator = tab.GENERATORS[tab.WGAN_LABELS[network]].get()
    noise = torch.randn(16, generator.config.nz)

    def generator_forward():
        with torch.inference_mode():
            generator(noise)

    fns = {"generator": generator_forward, "grid tab": lambda: tab.flowers(7, network)}
    rows_cycle = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cycle = tab.CYCLE[tab.CYCLE_NAME].get()
        except tab.ModelUnavailable:
            cycle = None
            print("(no CycleGAN weights: its rows are left out)")
        if cycle is not None:
            photo = street_photo(tmp)
            x = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

            def cycle_forward():
                with torch.inference_mode():
                    cycle.b_to_a(cycle.a_to_b(x))

            fns |= {"cycle": cycle_forward, "cycle tab": lambda: tab.translate(photo, tab.DAY_TO_DUSK)}
        times = interleaved_median_ms(fns, repeats=args.repeats)
    print(f"medians of {args.repeats} interleaved rounds, 2 threads\n")
    print_latency_table([("16 flowers: generator forward, fp32 eager (baseline)", times["generator"], None),
                         ("the tab's /flowers: noise, generator, grid image", times["grid tab"], 100)],
                        times["generator"], "generator")
    if cycle is not None:
        rows_cycle = [("480×360 day → dusk → day: both generators, fp32 eager (baseline)", times["cycle"], None),
                      ("the tab's /day_dusk: decode, both generators, heat map", times["cycle tab"], 600)]
        print()
        print_latency_table(rows_cycle, times["cycle"], "cycle")


if __name__ == "__main__":
    main()
