"""Live (Gatys) started from the trained network's output instead of the photo: how many steps does it save?

    python -m benchmarks.style_head_start [--style starry_night] [--photos 4] [--steps 300]      # from the repository root

For held-out photos (CSet5, CSet14) at 256 px, runs Gatys with the network's own loss twice: from the photo (the
live tab's default) and from the network's one forward pass (its "start from: the trained network's output").
Prints, per photo, the step at which the second run reaches the first run's final style and total losses, and
both runs' final losses. About 20 s per photo on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from dl_core import hub
from dl_core.paths import WEIGHTS_DIR
from dl_core.photos import list_images, load_photo
from dl_core.style.data import default_heldout
from dl_core.style.evaluate import loss_for
from dl_core.style.gatys import Losses, run_pixels
from dl_core.style.model import StyleNet


def loss_curve(loss, photo: torch.Tensor, start, steps: int) -> list[Losses]:
    """The losses after 0, 1, ..., steps updates."""
    curve: list[Losses] = []
    run_pixels(loss, photo, steps, curve=curve, start=start)
    return curve


def first_step(curve: list[Losses], term: str, target: float) -> int | None:
    return next((step for step, losses in enumerate(curve) if getattr(losses, term) <= target), None)


def shown(step: float | None, steps: int) -> str:
    return f"not within {steps}" if step is None else f"{step:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = hub.load_model(StyleNet, WEIGHTS_DIR / f"style-{args.style}").float().eval()
    loss = loss_for(model)
    rows, reach_style, reach_total = [], [], []
    for path in list_images(default_heldout())[: args.photos]:
        photo = load_photo(path, 256)
        with torch.no_grad():
            network_output = model(photo)
        from_photo = loss_curve(loss, photo, "content", args.steps)
        from_network = loss_curve(loss, photo, network_output, args.steps)
        final, net_final = from_photo[-1], from_network[-1]
        reach_style.append(first_step(from_network, "style", final.style))
        reach_total.append(first_step(from_network, "total", final.total))
        rows.append(f"| {path.name} | {shown(reach_style[-1], args.steps)} | {shown(reach_total[-1], args.steps)} | "
                    f"{final.total:.3f} / {final.style:.5f} | {net_final.total:.3f} / {net_final.style:.5f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print(f"\nGatys on {len(rows)} held-out photos at 256 px, weights/style-{args.style}'s loss, {args.steps} Adam steps")
    print("| photo | from the network's output: steps to the photo start's final style | … to its final total | "
          "from the photo: final total / style | from the network's output: final total / style |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))

    def median(values: list[int | None]) -> str:  # a run that never got there counts as the longest
        middle = statistics.median(float("inf") if v is None else v for v in values)
        return shown(None if middle == float("inf") else middle, args.steps)
    print(f"| **median** | **{median(reach_style)}** | **{median(reach_total)}** | | |")


if __name__ == "__main__":
    main()
