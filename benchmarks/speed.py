"""Every tab's main path, shipped vs plain fp32 eager PyTorch, side by side in one run (issue 24).

    python -m benchmarks.speed [--repeats 10] [--only detect,instant_style]      # from the repository root

For each tab's main handler work, the same bundled weights run twice: as the reference (the weight folder loaded
and run as plain fp32 eager PyTorch, nothing else) and as the tab ships them (its LazyModel's `prepare`: the fast
paths of dl_core/fast.py, or the path's own, e.g. superres' bf16 tiles). The two are timed in turn within every
round (interleaved medians, warm-up excluded: torch.compile compiles during the warm-up), so a machine whose
speed drifts slows both alike. Prints a table, then one JSON line, last:
{"ratios": {"detect": shipped / reference, ...}, "geomean": ..., "max": ...}.
The absolute targets are issue 24's, read as "on this machine, today". Needs the bundled weights.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from benchmarks.timing import interleaved_median_ms
from dl_core.paths import REPO_ROOT, WEIGHTS_DIR

SAMPLES = REPO_ROOT / "samples"
REVIEW = ("I went into this film expecting very little, and I came out surprised. The first half hour is slow, and "
          "the dialogue is often clumsy, but the two leads have real chemistry and the photography is beautiful. ")


@dataclass
class TabPath:
    """One tab's main path: the reference and shipped calls, what the shipped one does, the absolute target."""
    name: str
    what: str
    reference: Callable[[], object]
    shipped: Callable[[], object]
    fast_path: str
    target_ms: float | None
    repeats: float = 1.0  # share of --repeats (slow paths run fewer rounds)


def _photo(name: str = "chelsea-the-cat.jpg", size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(SAMPLES / name).convert("RGB")
    return image.resize(size, Image.BICUBIC) if size else image


def pair(lazy, folder: Path):
    """(reference, shipped) from a tab's LazyModel: its loader's output as it is, and after its `prepare`."""
    reference = lazy.loader(str(folder))
    shipped = lazy.loader(str(folder))
    if lazy.prepare is not None:
        shipped = lazy.prepare(shipped)
    return reference, shipped


def describe(model) -> str:
    from dl_core.fast import inference_copy

    path = getattr(inference_copy(model), "fast_path", None) or getattr(model, "fast_path", None)
    return path.describe() if path is not None else "fp32 eager"


def gradients_path(model) -> str:
    """What integrated gradients go through: the tab's model itself (a bf16 copy where the CPU has native bf16)."""
    path = getattr(model, "fast_path", None)
    return path.describe() if path is not None and path.bf16 else "fp32 eager (gradients: int8 copies cannot give them)"


# --- the tabs' paths ---------------------------------------------------------------------------------------------
def detection_paths() -> list[TabPath]:
    from demos import detection as tab
    from dl_core.detection.infer import detect_photo

    reference, shipped = pair(tab.MODEL, WEIGHTS_DIR / "detection")
    photo = _photo()
    return [TabPath("detect", "SSD on a photo, end to end (resize, network, decode, NMS)",
                  lambda: detect_photo(reference, photo), lambda: detect_photo(shipped, photo), describe(shipped), 150)]


def sentiment_paths() -> list[TabPath]:
    from demos import sentiment as tab
    from dl_core.ulmfit.infer import SentimentAnalyzer

    pairs = {lazy.name: pair(lazy, WEIGHTS_DIR / lazy.name) for lazy in (tab.CLASSIFIER, tab.BACKWARD, tab.LM)}
    reference = SentimentAnalyzer([pairs["sentiment"][0], pairs["sentiment-bwd"][0]], pairs["sentiment-lm"][0])
    shipped = SentimentAnalyzer([pairs["sentiment"][1], pairs["sentiment-bwd"][1]], pairs["sentiment-lm"][1])
    text = REVIEW * 12
    while len(reference.prepare(text).ids) > 500:
        text = text[: text.rfind(" ")]
    prepared = reference.prepare(text)
    fast = describe(pairs["sentiment"][1])
    return [
        TabPath("classify", f"IMDB forward + backward classifiers, {len(prepared.ids)} tokens",
              lambda: reference.classify(prepared), lambda: shipped.classify(prepared), fast, 250),
        TabPath("attribute", f"integrated gradients, 8 steps, both classifiers, {len(prepared.ids)} tokens",
              lambda: reference.attribute(prepared), lambda: shipped.attribute(prepared),
              gradients_path(pairs["sentiment"][1]), 2000),  # all 10 rounds: its ratio is the noisiest
        TabPath("generate", "20 words after the review", lambda: reference.generate(text, 20, seed=0),
              lambda: shipped.generate(text, 20, seed=0), describe(pairs["sentiment-lm"][1]), 300),
    ]


def translation_paths() -> list[TabPath]:
    from dl_core.hub import load_model
    from dl_core.translation.infer import Translator, inference_precision
    from dl_core.translation.model import Seq2Seq

    folder = WEIGHTS_DIR / "translation"
    reference = Translator(load_model(Seq2Seq, folder), "fp32")
    shipped = Translator(load_model(Seq2Seq, folder), inference_precision())  # as demos/translation.py loads it
    sentence = "Qu'est-ce que vous avez fait pendant les vacances d'été avec vos amis ?"
    ref_src, ship_src = reference.source(sentence), shipped.source(sentence)
    fast = {"int8": "int8 dynamic", "bf16": "bf16 weights", "fp32": "fp32 eager"}[shipped.precision]
    return [TabPath("translate_greedy", "greedy decoding, a 14-word question", lambda: reference.greedy(ref_src),
                  lambda: shipped.greedy(ship_src), fast, 30),
            TabPath("translate_beam", "beam search (5)", lambda: reference.beam(ref_src, 5),
                  lambda: shipped.beam(ship_src, 5), fast, 150)]


def devise_paths() -> list[TabPath]:
    from demos import devise as tab

    reference, shipped = pair(tab.MODEL, WEIGHTS_DIR / "devise")
    photo = _photo()

    def words(searcher):
        features, _ = searcher.encode([photo])
        return searcher.nearest_words(searcher.embed(features)[0], 10)

    return [TabPath("devise_words", "a photo's 10 nearest of 100k words (backbone, head, search)",
                  lambda: words(reference), lambda: words(shipped), describe(shipped.extractor), 60 + 30)]


def gan_paths() -> list[TabPath]:
    from demos import gan as tab

    ref_cycle, ship_cycle = pair(tab.CYCLE[tab.CYCLE_NAME], WEIGHTS_DIR / tab.CYCLE_NAME)
    street = torch.rand(1, 3, 360, 480) * 2 - 1

    def both(generators):
        with torch.inference_mode():
            return generators.b_to_a(generators.a_to_b(street))

    ref_gen, ship_gen = pair(tab.GENERATORS["wgan-gp-flowers"], WEIGHTS_DIR / "wgan-gp-flowers")
    noise = torch.randn(16, ref_gen.config.nz, generator=torch.Generator().manual_seed(0))

    def grid(generator):
        with torch.inference_mode():
            return generator(noise)

    return [TabPath("day_dusk", "CycleGAN, a 480x360 photo, both directions", lambda: both(ref_cycle),
                  lambda: both(ship_cycle), describe(ship_cycle.a_to_b), 600, repeats=0.5),
            TabPath("flowers", "WGAN-GP generator, a 4x4 grid", lambda: grid(ref_gen), lambda: grid(ship_gen),
                  describe(ship_gen), 100)]


def lab_paths() -> list[TabPath]:
    from demos import training_lab as tab
    from dl_core.cifar.infer import classify

    reference, shipped = pair(tab.MODEL, WEIGHTS_DIR / "darknet-cifar10")
    photo = _photo()
    return [TabPath("lab_classify", "DarkNet on a photo at 32 px, with flip TTA", lambda: classify(reference, photo),
                  lambda: classify(shipped, photo), describe(shipped), None)]


def style_paths() -> list[TabPath]:
    from demos import style as tab
    from dl_core.style import infer

    reference, shipped = pair(tab.MODELS["starry_night"], WEIGHTS_DIR / "style-starry_night")
    photo = torch.rand(1, 3, 512, 512)

    def instant(network):
        with torch.inference_mode():
            return network(photo)

    settings, grams = infer.trained_style_target(reference)
    content = torch.rand(1, 3, 256, 256)
    plain = infer.feature_extractor(settings["backbone"], settings.get("smoothing"), settings.get("temperature", 1.0))
    losses = {"reference": infer.live_loss(settings, grams, plain),
              "shipped": infer.live_loss(settings, grams, tab.extractor_for(settings))}  # as the live tab runs it
    targets = {name: loss.content_targets(content) for name, loss in losses.items()}
    image = content.clone().requires_grad_(True)

    def gatys_step(which: str):
        with torch.enable_grad():
            losses[which](image, targets[which]).total.backward()

    return [TabPath("instant_style", "Starry Night network, a 512x512 photo", lambda: instant(reference),
                  lambda: instant(shipped), describe(shipped), 400),
            TabPath("gatys_step", "one Gatys step at 256 px (Lite0 features, forward and backward)",
                  lambda: gatys_step("reference"), lambda: gatys_step("shipped"),
                  tab.extractor_for(settings).fast_path.describe(), 100, repeats=0.5)]


def segmentation_paths() -> list[TabPath]:
    from demos import segmentation as tab
    from dl_core.segmentation.infer import segment

    reference, shipped = pair(tab.UNET, WEIGHTS_DIR / "segmentation")
    reference = reference.to(memory_format=torch.contiguous_format)  # the loader lays it out channels_last
    photo = _photo("camera.jpg", (480, 360))
    return [TabPath("segment", "U-Net on a 480x360 photo", lambda: segment(reference, photo),
                  lambda: segment(shipped, photo), describe(shipped), None, repeats=0.5)]


def superres_paths() -> list[TabPath]:
    from demos import superres as tab
    from dl_core.superres.infer import enlarge

    reference, shipped = pair(tab.NETWORKS["superres-x4"], WEIGHTS_DIR / "superres-x4")
    reference = reference.to(memory_format=torch.contiguous_format)
    photo = _photo(size=(120, 90))
    return [TabPath("enlarge", "x4 super-resolution of a 120x90 photo", lambda: enlarge(reference, photo, fast=False),
                  lambda: enlarge(shipped, photo, fast=True), "bf16 autocast + channels_last (its own tiles)", None)]


PATHS = {"detection": detection_paths, "sentiment": sentiment_paths, "translation": translation_paths,
         "devise": devise_paths, "gan": gan_paths, "training_lab": lab_paths, "style": style_paths,
         "segmentation": segmentation_paths, "superres": superres_paths}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per path (slow paths fewer)")
    parser.add_argument("--only", default="", help="comma-separated tabs or paths (default: all)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    rows = []
    names_paths = bool(only - set(PATHS))  # a path's tab is known once built: then every tab is built
    for tab, build in PATHS.items():
        if only and tab not in only and not names_paths:
            continue  # a cheap skip: building a tab's models costs seconds
        try:
            paths = build()
        except (OSError, ValueError) as err:
            print(f"{tab}: skipped ({err})", file=sys.stderr)
            continue
        for path in paths:
            if only and tab not in only and path.name not in only:
                continue
            times = interleaved_median_ms({"reference": path.reference, "shipped": path.shipped},
                                          repeats=max(3, round(args.repeats * path.repeats)), warmup=2)
            rows.append((path, times["reference"], times["shipped"]))
            print(f"{path.name}: {times['reference']:.1f} -> {times['shipped']:.1f} ms", file=sys.stderr)
    unmatched = only - set(PATHS) - {path.name for path, _, _ in rows}
    if only and not rows:
        parser.error(f"--only {args.only!r} matched no path: name tabs ({', '.join(PATHS)}) or their paths")
    if unmatched:
        print(f"--only: no path named {', '.join(sorted(unmatched))}", file=sys.stderr)
    print("| path | what | fp32 eager ms | shipped ms | shipped ÷ fp32 | shipped path | target ms (this machine, today) |")
    print("|---|---|---|---|---|---|---|")
    for path, ref, ship in rows:
        target = "" if path.target_ms is None else f"{path.target_ms:.0f} {'ok' if ship <= path.target_ms else 'MISSED'}"
        print(f"| {path.name} | {path.what} | {ref:.1f} | {ship:.1f} | **{ship / ref:.2f}** | {path.fast_path} | {target} |")
    ratios = {path.name: round(ship / ref, 3) for path, ref, ship in rows}
    result = {"ratios": ratios,
              "geomean": round(math.exp(sum(math.log(r) for r in ratios.values()) / max(1, len(ratios))), 3),
              "max": max(ratios.values(), default=None)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
