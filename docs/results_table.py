"""The README's results table, written from the bundled weight folders' metrics.json and model files.

    python docs/results_table.py            # print the table
    python docs/results_table.py --write    # put it into README.md between the results markers

One row per bundled folder (the four style networks share one), and one for what the sentiment tab predicts (its
classifiers together). The numbers are the ones `evaluate` wrote into each folder (see its model card for
the command); the data tests re-derive them from the data sets.
"""
from __future__ import annotations

import argparse
import json

from dl_core.paths import REPO_ROOT, WEIGHTS_DIR

START, END = "<!-- results:start -->", "<!-- results:end -->"
STYLES = {"style-starry_night": "The Starry Night", "style-the_scream": "The Scream", "style-shipwreck": "The Shipwreck",
          "style-woman_with_hat_matisse": "Woman with a Hat"}


def _model_class(name: str):
    if name == "detection":
        from dl_core.detection.model import SSD
        return SSD
    if name == "translation":
        from dl_core.translation.model import Seq2Seq
        return Seq2Seq
    if name == "devise":
        from dl_core.devise.model import DeviseHead
        return DeviseHead
    if name == "darknet-cifar10":
        from dl_core.cifar.model import Darknet
        return Darknet
    if name.startswith("cyclegan"):
        from dl_core.gan.model import CycleGenerators
        return CycleGenerators
    if name.startswith("wgan"):
        from dl_core.gan.model import DCGANGenerator
        return DCGANGenerator
    if name.startswith("superres"):
        from dl_core.superres.model import SrResnet
        return SrResnet
    if name.startswith("segmentation"):
        from dl_core.segmentation.model import SegmentationNet
        return SegmentationNet
    if name == "sentiment-lm":
        from dl_core.ulmfit.model import LanguageModel
        return LanguageModel
    if name == "sentiment-nbsvm":
        from dl_core.ulmfit.nbsvm import NBSVM
        return NBSVM
    if name.startswith("sentiment"):
        from dl_core.ulmfit.model import TextClassifier
        return TextClassifier
    from dl_core.style.model import StyleNet
    return StyleNet


def _millions_and_megabytes(name: str) -> tuple[float, float]:
    """Parameters in millions (from the loaded model) and the weight file's size as stored in MB (an NBSVM's with
    config.json, where its n-grams are)."""
    from dl_core.hub import load_model

    model_class = _model_class(name)
    model = load_model(model_class, WEIGHTS_DIR / name)
    params = sum(p.numel() for p in model.parameters())
    files = ("model.safetensors", "config.json") if model_class.__name__ == "NBSVM" else ("model.safetensors",)
    return params / 1e6, sum((WEIGHTS_DIR / name / f).stat().st_size for f in files) / 1e6


def _size(name: str) -> str:
    millions, megabytes = _millions_and_megabytes(name)
    return f"{millions:.1f}M, {megabytes:.1f} MB"


def _metrics(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / name / "metrics.json").read_text())


def rows() -> list[tuple[str, str, str, str, str]]:
    """(folder, model, held-out data, metric, value) for every bundled folder."""
    out = []
    m = _metrics("detection")["focal"]["raccoon_test"]
    out.append(("detection", "SSD + largest-object head", f"raccoon test split ({m['n']} photos)", "mAP@0.5 / mAP@[.5:.95]",
                f"**{m['map50']:.3f}** / {m['map']:.3f}"))
    m, ood = _metrics("translation")["heldout"], _metrics("translation")["multi30k"]
    out.append(("translation", "bi-GRU seq2seq + attention", f"Tatoeba held-out ({m['n']:,} pairs) · Multi30k test "
                f"({ood['n']:,})", "sacreBLEU / chrF", f"**{m['bleu']:.1f}** / {m['chrf']:.1f} · **{ood['bleu']:.1f}** / {ood['chrf']:.1f}"))
    m, unseen = _metrics("devise")["test"], _metrics("devise")["unseen"]
    out.append(("devise", "DeViSE head → GloVe 50-d", f"CIFAR-10 test ({m['n']:,}; {', '.join(unseen)} never trained)",
                "top-1 unseen / all (ConSE)", f"**{100 * m['top1_unseen']:.1f}%** / {100 * m['top1_all']:.1f}% "
                f"({100 * m['conse_top1_unseen']:.1f}% / {100 * m['conse_top1_all']:.1f}%)"))
    m = _metrics("darknet-cifar10")["test"]
    out.append(("darknet-cifar10", "DarkNet, from scratch", f"CIFAR-10 test ({m['n']:,} images)", "accuracy (flip TTA)",
                f"**{100 * m['accuracy']:.2f}%**"))
    clip, gp = _metrics("wgan-flowers")["scores"], _metrics("wgan-gp-flowers")["scores"]
    n_heldout = _metrics("wgan-gp-flowers")["facts"]["n_heldout"]
    out.append(("wgan-gp-flowers", "WGAN-GP generator", f"Oxford flowers ({n_heldout} held out)",
                "FD-Lite0 (÷ real's; clipping)", f"**{gp['fd']:.1f}** ({gp['fd'] / gp['fd_real']:.1f}×; {clip['fd']:.1f})"))
    cycle = _metrics("cyclegan-dusk")["scores"]["a_to_b"]
    out.append(("cyclegan-dusk", "CycleGAN generators", "CamVid 0006R0 → 16 dusk frames",
                "FD-Lite0 (as is; real dusk)",
                f"**{cycle['fd_translated']:.1f}** ({cycle['fd_untranslated']:.1f}; {cycle['fd_floor']:.1f})"))
    unet, plain = _metrics("segmentation")["valid"], _metrics("segmentation-noskip")["valid"]
    out.append(("segmentation", "U-Net over EfficientNet-Lite0", f"CamVid val ({unet['n']} photos)",
                "mIoU (same encoder, no skips)", f"**{unet['miou']:.3f}** ({plain['miou']:.3f})"))
    scores = _metrics("superres-x4")["scores"]
    set5, urban = scores["CSet5"], scores["urban"]
    perceptual = _metrics("superres-x4-perceptual")["scores"]["CSet5"]
    out.append(("superres-x4", "SrResnet ×4, pixel loss", f"Set5 · CamVid drive 0006R0 ({urban['n']})",
                "PSNR-Y dB (bicubic; perceptual)",
                f"**{set5['psnr']:.2f}** ({set5['psnr_bicubic']:.2f}; {perceptual['psnr']:.2f}) · **{urban['psnr']:.2f}** "
                f"({urban['psnr_bicubic']:.2f})"))
    forward, backward = _metrics("sentiment"), _metrics("sentiment-bwd")
    n = forward["heldout"]["n"]
    out.append(("sentiment", "ULMFiT classifier, forward", f"IMDB test ({n:,} reviews)", "accuracy",
                f"{100 * forward['heldout']['accuracy']:.2f}%"))
    pair = backward["ensemble"]["accuracy"]
    out.append(("sentiment-bwd", "ULMFiT classifier, backward", f"IMDB test ({backward['heldout']['n']:,} reviews)",
                "accuracy (with the forward one)",
                f"{100 * backward['heldout']['accuracy']:.2f}% (**{100 * pair:.2f}%**)"))
    short = _metrics("sentiment-nbsvm")["ensemble"]
    for name, what in (("sentiment-rt", "one-liner classifier"), ("sentiment-nbsvm", "one-liner NBSVM, n-grams")):
        m = _metrics(name)["heldout"]
        pair = f" (**{100 * short['accuracy']:.2f}%**)" if name == "sentiment-nbsvm" else ""
        out.append((name, what, f"rt-polarity held-out ({m['n']:,})",
                    "accuracy" + (" (with the classifier)" if pair else ""), f"{100 * m['accuracy']:.2f}%{pair}"))
    app = _metrics("sentiment")["app"]
    out.append(("", "≤ 64 words: one-liner pair, else IMDB's",
                f"IMDB test ({app['aclImdb']['n']:,}) · rt-polarity held-out ({app['rt-polarity']['n']:,})", "accuracy",
                f"**{100 * app['aclImdb']['accuracy']:.2f}%** · **{100 * app['rt-polarity']['accuracy']:.2f}%**"))
    m = _metrics("sentiment-lm")["valid"]
    out.append(("sentiment-lm", "AWD-LSTM language model", f"IMDB held-out texts ({m['n_tokens']:,} tokens)", "perplexity",
                f"{m['perplexity']:.1f}"))
    styles = [_metrics(name)["heldout"] for name in STYLES]
    cities = [_metrics(name).get("city") for name in STYLES]
    data, value = f"CSet5 + CSet14 ({styles[0]['n']} photos)", _ratios_and_steps(styles)
    if all(cities):  # the check on photos unlike any training set (dl_core/style/data.py: CITY_PHOTOS)
        data = f"CSet5 + CSet14 ({styles[0]['n']}) · city ({cities[0]['n']})"
        value = f"{value} · {_ratios_and_steps(cities)}"
    out.append(("style-*", f"style networks, {len(STYLES)} paintings", data,
                f"style loss ÷ {styles[0]['gatys_steps']} Gatys steps' · steps matched", value))
    return out


def _ratios_and_steps(records: list[dict]) -> str:
    return f"{_span([m['style_ratio'] for m in records], '.2f')} · {_span([m['gatys_steps_matched'] for m in records], 'd')}"


def _span(values: list, form: str) -> str:
    return f"{min(values):{form}}–{max(values):{form}}"


def _sizes(names) -> str:
    """Parameters and file sizes of several folders, as ranges."""
    millions, megabytes = zip(*(_millions_and_megabytes(name) for name in names))
    return f"{_span(millions, '.1f')}M, {_span(megabytes, '.1f')} MB"


def table() -> str:
    lines = ["| weights | model (params, file) | held-out data | metric | value |", "|---|---|---|---|---|"]
    for folder, model, data, metric, value in rows():
        if not folder:  # a row about several folders: what the tab predicts
            lines.append(f"| sentiment tab | {model} | {data} | {metric} | {value} |")
        elif folder == "style-*":  # the four style networks, one row
            lines.append(f"| [style-*](weights) | {model} ({_sizes(STYLES)}) | {data} | {metric} | {value} |")
        else:
            lines.append(f"| [{folder}](weights/{folder}) | {model} ({_size(folder)}) | {data} | {metric} | {value} |")
    return "\n".join(lines)


def with_table(readme: str, text: str) -> str:
    """README text with the results table between its markers."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{text}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    text = table()
    if args.write:
        readme = REPO_ROOT / "README.md"
        readme.write_text(with_table(readme.read_text(), text))
    print(text)


if __name__ == "__main__":
    main()
