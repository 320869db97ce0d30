"""A style network's model card, written entirely from its folder's config.json and metrics.json.

    python train/style.py card --weights weights/style-starry_night     # rewrites README.md and painting.jpg

The folder also carries its painting, painting.jpg (export_painting: fitted within 768 px, at most 300 KB), so the
card can show it and the app can show it beside the network wherever the folder comes from (the repository or a
Hub repo), without the data set the painting came from.

metrics.json holds what the card reports beyond the architecture: the training arguments and command line
("train_args"), the per-epoch history, time and hardware, the runs it was trained on from ("lineage"), and the
held-out comparison with Gatys ("heldout") with the command that measured it ("evaluate_command"), the same on
the city photos ("city", with its "command"), and where the network replaced an earlier one, that one's numbers
("replaces", recorded by `card --replaces`).
"""
from __future__ import annotations

import json
from pathlib import Path

from dl_core import hub
from dl_core.paths import REPO_ROOT, data_path, display_path
from dl_core.perceptual import WEIGHT_SOURCES
from dl_core.style.data import CITY_SOURCE, describe_folders
from dl_core.style.evaluate import EVAL_SIZE, GATYS_STEPS, matched_text
from dl_core.style.infer import PAINTING_FILE
from dl_core.style.model import StyleNet, StyleNetConfig

PAINTING_MAX_SIDE = 768  # px, the longer side: sharp enough to see the brush strokes on a card or in the tab
PAINTING_MAX_BYTES = 300_000
PAINTING_QUALITIES = (90, 85, 80, 75, 70, 60, 50)  # JPEG qualities tried in turn until the file fits
# The bundled styles' paintings, for the card's credit line: (title, painter, year). All are public domain.
PAINTINGS = {
    "starry_night": ("The Starry Night", "Vincent van Gogh", 1889),
    "the_scream": ("The Scream", "Edvard Munch", 1893),
    "shipwreck": ("The Shipwreck", "J. M. W. Turner", 1805),
    "woman_with_hat_matisse": ("Woman with a Hat", "Henri Matisse", 1905),
}


def export_painting(source: str | Path, folder: str | Path, max_side: int = PAINTING_MAX_SIDE,
                    max_bytes: int = PAINTING_MAX_BYTES) -> Path:
    """Write the painting into a weight folder as painting.jpg: RGB, fitted within max_side px (never enlarged),
    at the highest of PAINTING_QUALITIES that keeps it within max_bytes. Returns the file."""
    import io

    from PIL import Image

    with Image.open(source) as original:
        image = original.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    for quality in PAINTING_QUALITIES:
        encoded = io.BytesIO()
        image.save(encoded, "JPEG", quality=quality, optimize=True)
        if encoded.tell() <= max_bytes:
            break
    else:
        raise ValueError(f"{source} does not fit in {max_bytes} bytes as a {max(image.size)}-px JPEG even at quality "
                         f"{PAINTING_QUALITIES[-1]}: pass a smaller max_side")
    path = Path(folder) / PAINTING_FILE
    path.write_bytes(encoded.getvalue())
    return path


def painting_source(train_args: dict) -> Path | None:
    """The painting a network was trained on (train_args["style"], relative to the repository root as the train
    command was run, else by its file name under the data root's style/), where this machine has it."""
    recorded = Path(train_args["style"])
    for candidate in (recorded if recorded.is_absolute() else REPO_ROOT / recorded, data_path("style", recorded.name)):
        if candidate.is_file():
            return candidate
    return None


def training_lineage(folder: str | Path) -> list[dict]:
    """The runs that made a trained network, oldest first: each `--init` run trains on from the one before.

    From the folder's metrics.json (its "lineage", or by following train_args.init where an older folder has none)."""
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    init = metrics["train_args"].get("init")
    earlier = metrics.get("lineage") or (training_lineage(init) if init and (Path(init) / "metrics.json").exists() else [])
    train_args = metrics["train_args"]
    return [*earlier, {"command": train_args["command_line"], "epochs": len(metrics["history"]), "bs": train_args["bs"],
                       "steps_per_epoch": train_args["steps_per_epoch"], "seconds": metrics["train_seconds"],
                       "hardware": metrics["hardware"]}]


def evaluate_command(folder: str | Path, data: list[str | Path], size: int = EVAL_SIZE, steps: int = GATYS_STEPS,
                     sample: int | None = None, seed: int = 0) -> str:
    """The `evaluate` command that measures a folder's held-out numbers (paths as the README writes them)."""
    folder = Path(folder)
    if folder.is_absolute() and folder.resolve().is_relative_to(REPO_ROOT):
        folder = folder.resolve().relative_to(REPO_ROOT)
    options = (f" --size {size}" if size != EVAL_SIZE else "") + (f" --steps {steps}" if steps != GATYS_STEPS else "")
    options += (f" --sample {sample}" if sample else "") + (f" --seed {seed}" if sample and seed else "")
    return f"python train/style.py evaluate --weights {folder} --data {' '.join(map(display_path, data))}{options}"


def complete_metrics(folder: str | Path, metrics: dict) -> dict:
    """metrics.json with what older folders lack and the card needs: the earlier runs (from train_args.init)
    and the evaluate command behind "heldout" (the training run's held-out folders, the numbers' size and steps)."""
    metrics = dict(metrics)
    earlier = training_lineage(folder)[:-1]
    if earlier and not metrics.get("lineage"):
        metrics["lineage"] = earlier
    if "heldout" in metrics and "evaluate_command" not in metrics:
        heldout = metrics["heldout"]
        metrics["evaluate_command"] = evaluate_command(folder, metrics["train_args"]["heldout"], heldout["size"],
                                                       heldout["gatys_steps"])
    return metrics


def record_replaced(folder: str | Path, replaced: str | Path) -> dict:
    """Keep the replaced network's evaluated numbers in the new folder's metrics.json as "replaces": its held-out and
    city records and the commit that last changed its weights (so `git checkout <commit> -- <folder>` brings it back
    to re-measure). Returns the record."""
    import subprocess

    old = json.loads((Path(replaced) / "metrics.json").read_text())
    weights = Path(replaced).resolve() / "model.safetensors"
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", str(weights)], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    record = {"commit": commit or None, "folder": display_path(replaced),
              **{key: old[key] for key in ("heldout", "city") if key in old}}
    hub.record_metrics(folder, ("replaces",), record)
    return record


def write_card(folder: str | Path) -> str:
    """Complete the folder's metrics.json (complete_metrics), rewrite its README.md from it and config.json, and
    write painting.jpg from the painting it was trained on where this machine has it (an existing painting.jpg is
    kept otherwise); the weights and config.json are not touched. Returns the card."""
    folder = Path(folder)
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    completed = complete_metrics(folder, metrics)
    if completed != metrics:
        metrics_file.write_text(json.dumps(completed, indent=1))
    card = model_card(json.loads((folder / "config.json").read_text()), completed)
    (folder / "README.md").write_text(card)
    source = painting_source(completed["train_args"])
    if source is not None:
        export_painting(source, folder)
    return card


def _metrics_section(heldout: dict, command: str) -> str:
    return f"""## Metrics (held-out photos, each fitted within {heldout["size"]} px)
| | content loss | style loss |
|---|---|---|
| this network (one forward pass) | {heldout["content_loss"]:.4f} | {heldout["style_loss"]:.5f} |
| Gatys, {heldout["gatys_steps"]} Adam steps on the pixels, same loss | {heldout["gatys_content_loss"]:.4f} | {heldout["gatys_style_loss"]:.5f} |

**Style ratio (network / Gatys): {heldout["style_ratio"]:.2f}** over {heldout["n"]} photos (bar: ≤ 1.5).
{_steps_matched_sentence(heldout)}Reproduce: `{command}`
"""


def _city_section(city: dict | None, heldout: dict | None, replaces: dict | None) -> str:
    """The card's check on photos unlike any training set, and the old-vs-new table where the network replaced one."""
    if not city:
        return ""
    section = (f"\n## Photos unlike the training sets\nOn {city['n']} photos of city buildings and streets ({CITY_SOURCE}; "
               f"fetched by `python train/style.py city-photos`): style ratio **{city['style_ratio']:.2f}**, one forward "
               f"pass worth **{matched_text(city)} Gatys steps**. Reproduce: `{city['command']}`\n")
    if replaces:
        def row(name: str, record: dict) -> str:
            cells = [f"{r['style_ratio']:.2f} | {matched_text(r)} | {r['content_loss']:.3f}" if r else "– | – | –"
                     for r in (record.get("heldout"), record.get("city"))]
            return f"| {name} | {' | '.join(cells)} |"
        commit = f" (weights of commit {replaces['commit']})" if replaces.get("commit") else ""
        section += ("\n| network | held-out style ratio | steps matched | content loss | city style ratio | steps matched "
                    "| content loss |\n|---|---|---|---|---|---|---|\n"
                    f"{row('this one', {'heldout': heldout, 'city': city})}\n{row('the one it replaced' + commit, replaces)}\n")
    return section


def _sample_sentence(sample: dict | None) -> str:
    """The card's line on the seeded sample the data test re-scores (recorded by `evaluate --sample N --write`)."""
    if not sample:
        return ""
    return (f"\nOn a seeded sample of {sample['n']} of these photos (the data test's quick check): style ratio "
            f"{sample['style_ratio']:.2f}, {matched_text(sample)} "
            f"Gatys steps matched. Reproduce: `{sample['command']}`\n")


def _steps_matched_sentence(heldout: dict) -> str:
    """The card's line on what one forward pass is worth in Gatys steps (folders evaluated before it: nothing)."""
    if "gatys_steps_matched" not in heldout:
        return ""
    matched = heldout["gatys_steps_matched"]
    if matched is None:
        return f"Its style loss is lower than that of every one of the {heldout['gatys_steps']} Gatys steps.\n"
    return (f"Its one forward pass is worth **{matched} Gatys steps**: the step at which pixel optimisation's mean "
            f"style loss first falls to the network's.\n")


def _init_note(train: dict, replaces: dict | None) -> str:
    """Where a run trained on from the very folder it then replaced, which weights `--init` read."""
    if not (replaces and replaces.get("commit") and train.get("init") == replaces.get("folder")):
        return ""
    return (f"(`--init {train['init']}` read the network this one replaced, the weights of commit {replaces['commit']}: "
            f"`git checkout {replaces['commit']} -- {train['init']}` brings them back.)\n")


def _lineage_section(lineage: list[dict], seconds: float) -> str:
    return hub.lineage_section(lineage, seconds, "network", "--init", lambda run: (
        f"{run['epochs']} epochs × {run['steps_per_epoch']} batches of {run['bs']}, {run['seconds'] / 60:.1f} minutes on {run['hardware']}"))


def _painting_section(train: dict) -> str:
    """The painting as the card shows it (the folder's painting.jpg) and its credit."""
    name = train["name"]
    file = Path(train["style"]).name
    if name in PAINTINGS:
        title, painter, year = PAINTINGS[name]
        credit = f"*{title}*, {painter}, {year}: public domain."
    else:
        title, credit = name.replace("_", " "), "The painting this network was trained on."
    return (f"![{title}]({PAINTING_FILE})\n\n{credit} `{PAINTING_FILE}` is `{file}` fitted within {PAINTING_MAX_SIDE} px "
            f"(written by `python train/style.py card`).\n")


@hub.ends_with_fast_path_section
def model_card(config: StyleNetConfig | dict, metrics: dict) -> str:
    """The README.md of a weight folder, from its config (config.json's dict) and metrics.json."""
    model = StyleNet(config)  # the architecture only: the parameter count
    config, train = model.config, metrics["train_args"]
    n_params = sum(p.numel() for p in model.parameters())
    loss, history, seconds = config.loss, metrics["history"], metrics["train_seconds"]
    title = train["name"].replace("_", " ")
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.4f} | {h['content']:.4f} | {h['style']:.5f} | "
                     f"{h['valid_loss']:.4f} | {h['seconds']:.0f} |" for h in history)
    heldout = metrics.get("heldout")
    metrics_section = _metrics_section(heldout, metrics["evaluate_command"]) if heldout else "## Metrics\nNot evaluated (--eval-steps 0).\n"
    metrics_section += _sample_sentence(metrics.get("heldout_sample"))
    metrics_section += _city_section(metrics.get("city"), heldout, metrics.get("replaces"))
    smoothing = f'softmax, T={loss["temperature"]:g}' if loss["smoothing"] else "none"
    note = f"\n- {train['card_note']}" if train.get("card_note") else ""
    optimiser = f"AdamW (weight decay {train['wd']})" if train.get("wd") else "Adam"
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [style-transfer, fast-neural-style, perceptual-loss, fastai-part2, pytorch_model_hub_mixin]
---
# Lesson 14 · Fast style transfer: {title}

Johnson et al.'s image transformation network (`dl_core/style/model.py`: reflection padding, strided
convolutions, {config.residual_blocks} residual blocks, instance norm, upsample-then-convolve), channels
{tuple(config.channels)}, {n_params / 1e6:.2f}M parameters, weights stored in fp16. It turns any photo into the
style of the painting in one forward pass.

{_painting_section(train)}
## Loss
Perceptual loss (`dl_core/perceptual.py`) on frozen ImageNet **{loss["backbone"]}** features
(activation smoothing: {smoothing}): content = relative feature error at `{loss["content_layer"]}`
(weight {loss["content_weight"]}), style = relative Gram-matrix error over {", ".join(f"`{s}`" for s in loss["style_layers"])}
(weight {loss["style_weight"]}), total variation weight {loss["tv_weight"]}. The painting's Gram matrices are stored with
the weights (`style_grams.*`), so the loss can be recomputed without the painting.

## Data
- Style: *{title}* (public domain), `{Path(train["style"]).name}`, shorter side scaled to {train["style_size"]} px.
- Content: random {train["size"]}-px crops of {metrics["n_train_photos"]} photos from {describe_folders(train["content"])}.
- Held out, never trained on ({heldout["n"] if heldout else metrics["n_heldout_photos"]} photos): {describe_folders(train["heldout"])}.{note}
- Feature network: {WEIGHT_SOURCES[loss["backbone"]]}.

{metrics_section}
## Training
{_lineage_section(metrics.get("lineage", []), seconds)}```
{train["command_line"]}
```
{_init_note(train, metrics.get("replaces"))}{len(history)} epochs × {train["steps_per_epoch"]} batches of {train["bs"]}, {seconds / 60:.1f} minutes on {metrics["hardware"]};
{optimiser}, 1cycle (max LR {train["lr"]}), gradient clipping {train["clip"]}, mixed precision {train["mixed_precision"]}.

| epoch | train loss | content | style | held-out loss | seconds |
|---|---|---|---|---|---|
{rows}
"""
