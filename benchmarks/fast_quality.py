"""What the CPU fast paths cost in quality: each bundled model scored on its held-out data twice, as plain fp32 eager
and as the tab ships it (benchmarks/speed.py times the same two), beside issue 24's tolerance for its metric.

    python -m benchmarks.fast_quality [--only darknet,detection,segmentation,style]     # from the repository root

  darknet       CIFAR-10 test accuracy (10,000 images, mirror TTA)           tolerance: 0.2 points lower
  detection     mAP@0.5 on raccoon test and coco_tiny's held-out images       tolerance: 0.01 lower
  segmentation  CamVid val mIoU (full resolution)                             tolerance: 0.01 lower
  style         each network's style and content loss on CSet5 + CSet14       tolerance: 2% higher

Prints a table and one JSON line, last: {name: {"metric", "fp32", "shipped", "difference", "tolerance", "ok"}}.
Needs the data root (DL_DATA_DIR, default ../shared/data); a model whose data is absent is skipped, with the reason.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import torch

from benchmarks.speed import pair
from dl_core.paths import WEIGHTS_DIR, data_path


def _pair(lazy, name: str):
    return pair(lazy, WEIGHTS_DIR / name)


def darknet() -> list[dict]:
    from demos import training_lab as tab
    from dl_core.cifar.data import read_split
    from dl_core.cifar.evaluate import evaluate_model

    test = read_split(data_path("cifar10", "cifar10-jpg.zip"), "test")
    reference, shipped = _pair(tab.MODEL, "darknet-cifar10")
    scores = [evaluate_model(model, test)["accuracy"] for model in (reference, shipped)]
    return [_row("darknet-cifar10", "CIFAR-10 test accuracy (TTA)", *scores, 0.002)]


def detection() -> list[dict]:
    from demos import detection as tab
    from dl_core.detection.data import evaluation_items
    from dl_core.detection.evaluate import mean_average_precision, recorded_heldout_split

    reference, shipped = _pair(tab.MODEL, "detection")
    n_heldout, seed = recorded_heldout_split(WEIGHTS_DIR / "detection")
    sets = {"raccoon test": evaluation_items(data_path("detection", "raccoon"), "test"),
            "coco_tiny held-out": evaluation_items(data_path("detection", "coco_tiny", "train.json"), "heldout",
                                                   n_heldout, seed)}
    rows = []
    for name, items in sets.items():
        scores = [mean_average_precision(model, items)["map50"] for model in (reference, shipped)]
        rows.append(_row(f"detection, {name}", "mAP@0.5", *scores, 0.01))
    return rows


def segmentation() -> list[dict]:
    from demos import segmentation as tab
    from dl_core.segmentation.data import pair_by_stem, read_pairs
    from dl_core.segmentation.evaluate import evaluate_pairs

    reference, shipped = _pair(tab.UNET, "segmentation")
    reference = reference.to(memory_format=torch.contiguous_format)
    root = data_path("segmentation", "camvid")
    data = read_pairs(pair_by_stem(root / "val", root / "valannot"), reference.config.classes, reference.config.void_index)
    scores = [evaluate_pairs(model, data, progress=False)["miou"] for model in (reference, shipped)]
    return [_row("segmentation", "CamVid val mIoU", *scores, 0.01)]


def style() -> list[dict]:
    from demos import style as tab
    from dl_core.photos import list_images, load_photo
    from dl_core.style.evaluate import EVAL_SIZE, loss_for

    photos = [load_photo(p, EVAL_SIZE) for p in list_images([data_path("superres", "CSet5"), data_path("superres", "CSet14")])]
    if not photos:
        raise FileNotFoundError("no CSet5 / CSet14 photos under the data root")
    rows = []
    for name in tab.STYLES.values():
        reference, shipped = _pair(tab.MODELS[name], f"style-{name}")
        loss = loss_for(reference)
        totals = []
        for model in (reference, shipped):
            style_sum = content_sum = 0.0
            for photo in photos:
                with torch.inference_mode():
                    terms = loss(model(photo), loss.content_targets(photo))
                style_sum, content_sum = style_sum + float(terms.style), content_sum + float(terms.content)
            totals.append((style_sum / len(photos), content_sum / len(photos)))
        (ref_style, ref_content), (fast_style, fast_content) = totals
        rows.append(_row(f"style-{name}", "style loss, relative", ref_style, fast_style, 0.02, relative=True,
                         higher_is_better=False))
        rows.append(_row(f"style-{name}", "content loss, relative", ref_content, fast_content, 0.02, relative=True,
                         higher_is_better=False))
    return rows


def _row(name: str, metric: str, reference: float, shipped: float, tolerance: float, relative: bool = False,
         higher_is_better: bool = True) -> dict:
    """A tolerance bounds the loss only (issue 24: "no accuracy loss beyond a stated tolerance"): a shipped path that
    scores better than fp32 (rounding can go either way on a small set) is within it."""
    difference = (shipped - reference) / reference if relative else shipped - reference
    loss = -difference if higher_is_better else difference
    return {"name": name, "metric": metric, "fp32": round(reference, 6), "shipped": round(shipped, 6),
            "difference": round(difference, 5), "tolerance": tolerance, "ok": loss <= tolerance}


CHECKS: dict[str, Callable[[], list[dict]]] = {"darknet": darknet, "detection": detection,
                                                "segmentation": segmentation, "style": style}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(CHECKS)} (default: all)")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    rows = []
    for name, check in CHECKS.items():
        if only and name not in only:
            continue
        try:
            rows += check()
        except (FileNotFoundError, ValueError) as err:
            print(f"{name}: skipped ({err})", file=sys.stderr)
    print("| model | metric | fp32 eager | shipped | difference | tolerance | within |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['metric']} | {row['fp32']:.5g} | {row['shipped']:.5g} | {row['difference']:+.4g} | "
              f"{row['tolerance']:g} | {'yes' if row['ok'] else 'NO'} |")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
