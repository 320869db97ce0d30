"""Lessons 12-13 speed on this machine: classifying one photo, one live-training epoch, one LR range test.

    python -m benchmarks.training_lab_speed [--repeats 3] [--n-train 4000]      # from the repository root

Each is timed as the tab runs it (demos/training_lab.py's handlers, so decoding, the stage picture and the
streaming thread are included) and side by side with a bare baseline on the same inputs: the network's forward
passes alone (classify), the same batches' plain forward/backward/step loop (training and the LR finder). The
ratio is what the tab's machinery adds: accuracy checks, recording, plots' data, the worker thread.
Targets (issue 18, 2 CPU cores): classify <= 50 ms; a live epoch on the subset <= 30 s; the LR finder <= 20 s.
Needs the bundled weights and CIFAR-10 under the data root (DL_DATA_DIR, default ../shared/data).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.timing import median_ms, print_latency_table


def bare_steps(data, n_steps: int, seed: int = 0) -> float:
    """Seconds for n_steps plain SGD steps of a fresh lab network on the lab's batches."""
    from dl_core.cifar.data import train_loader
    from dl_core.cifar import LAB_BATCH_SIZE
    from dl_core.cifar.lab import LAB_CONFIG
    from dl_core.cifar.model import Darknet

    torch.manual_seed(seed)
    model = Darknet(LAB_CONFIG).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    start, done = time.perf_counter(), 0
    while done < n_steps:
        for (images,), labels in train_loader(data.train, LAB_BATCH_SIZE, seed):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
            opt.zero_grad()
            done += 1
            if done == n_steps:
                break
    return time.perf_counter() - start


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each training measurement (default: %(default)s)")
    parser.add_argument("--n-train", type=int, default=4000, help="training images of the live runs (default: %(default)s)")
    args = parser.parse_args()

    from demos import training_lab as tab
    from dl_core.cifar.infer import to_network_input
    from dl_core.cifar.lab import live_lr_find, live_train
    from dl_core.images import load_rgb
    from dl_core.schedules import one_cycle_phases

    photo = "samples/chelsea-the-cat.jpg"
    model = tab.MODEL.get()
    x = to_network_input(load_rgb(photo).image, 32)
    with torch.inference_mode():
        network_ms = median_ms(lambda: (model(x), model(x.flip(-1))), repeats=30)
    classify_ms = median_ms(lambda: tab.classify_photo(photo), repeats=30)
    print(f"classify a photo ({photo}), median of 30; baseline: the network's two passes (image and mirror) alone\n")
    print_latency_table([("network, 2 passes", network_ms, None), ("classify_photo (tab handler)", classify_ms, 50)],
                        network_ms, "network")

    data = tab.lab_data(args.n_train)
    per_epoch = len(data.train) // 64
    plan = one_cycle_phases(1, 0.4)
    epoch_s, bare_epoch_s, finder_s, bare_finder_s, finder_batches = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved: a machine whose speed drifts slows both alike
        epoch_s.append(timed(lambda: list(live_train(data, plan, epochs=1.0))))
        bare_epoch_s.append(bare_steps(data, per_epoch))
        last = list(live_lr_find(data))[-1]
        finder_s.append(last.seconds)
        finder_batches.append(len(last.lrs))
        bare_finder_s.append(bare_steps(data, len(last.lrs)))
    print(f"\nlive runs on {len(data.train)} CIFAR-10 images ({per_epoch} batches of 64), median of {args.repeats}; "
          f"baseline: the same number of bare SGD steps\n")
    rows = [("live epoch (1cycle, 9 accuracy checks)", statistics.median(epoch_s), 30.0),
            ("  bare steps, same batches", statistics.median(bare_epoch_s), None),
            (f"LR finder ({statistics.median(finder_batches):.0f} batches)", statistics.median(finder_s), 20.0),
            ("  bare steps, same count", statistics.median(bare_finder_s), None)]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measurement':<{width}} | median s | target s | ok  |")
    print(f"|{'-' * (width + 2)}|----------|----------|-----|")
    for name, seconds, target in rows:
        ok = "" if target is None else ("yes" if seconds <= target else "NO")
        print(f"| {name:<{width}} | {seconds:>8.1f} | {'' if target is None else f'{target:.0f}':>8} | {ok:<3} |")
    print(f"\nratio live/bare: epoch {statistics.median(epoch_s) / statistics.median(bare_epoch_s):.2f}, "
          f"LR finder {statistics.median(finder_s) / statistics.median(bare_finder_s):.2f}")


if __name__ == "__main__":
    main()
