"""Hub I/O: write weight folders (safetensors + config.json + model card), push them, and resolve where
the app loads each model from.

Where a model comes from, first match wins:
1. the environment variable `HUB_REPO_<NAME>` (e.g. `HUB_REPO_TRANSLATION=me/fastai-part2-translation`);
2. the settings file `hub_repos.json` at the repository root (or the path in `HUB_REPOS_FILE`):
   `{"translation": "me/fastai-part2-translation"}`;
3. the bundled folder `weights/<name>/`.
A configured Hub repo that cannot be reached (offline, `HF_HUB_OFFLINE=1`, not found) falls back to the
bundled folder, and the reason is kept so the UI can show it. With `HF_HUB_OFFLINE=1` no request is made;
otherwise a 3-second connection probe runs first, so an app without network never hangs on the Hub.
"""
from __future__ import annotations

import functools
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import torch
from torch import nn

from dl_core.paths import REPO_ROOT, WEIGHTS_DIR

M = TypeVar("M", bound=nn.Module)


@dataclass
class ModelSource:
    location: str  # a Hub repo id or a local folder
    from_hub: bool
    note: str = ""  # why we fell back to the bundled weights, if we did


def configured_repo(name: str) -> str | None:
    env = os.environ.get(f"HUB_REPO_{name.upper().replace('-', '_')}")
    if env:
        return env.strip()
    settings = Path(os.environ.get("HUB_REPOS_FILE", REPO_ROOT / "hub_repos.json"))
    if not settings.is_file():
        return None
    try:
        repos = json.loads(settings.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{settings.name} is not readable JSON ({err}); expected e.g. "
                         f'{{"{name}": "user/repo"}}') from None
    if not isinstance(repos, dict) or not all(isinstance(v, str) for v in repos.values()):
        raise ValueError(f'{settings.name} must map model names to Hub repo ids, e.g. {{"{name}": "user/repo"}}')
    return repos.get(name, "").strip() or None


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_source(name: str) -> ModelSource:
    """Where to load model `name` from (see module docstring); never waits more than ~3 s on the network."""
    bundled = str(WEIGHTS_DIR / name)
    repo = configured_repo(name)
    if not repo:
        return ModelSource(bundled, from_hub=False)
    if Path(repo).is_dir():  # a local folder is allowed too (handy for testing a fresh training run)
        return ModelSource(repo, from_hub=False)
    from huggingface_hub import constants, snapshot_download

    try:
        # Offline or unreachable: use what the local Hub cache holds for this repo, if anything.
        local_only = not _hub_reachable()
        folder = snapshot_download(repo, local_files_only=local_only)
        return ModelSource(folder, from_hub=True)
    except Exception as err:  # noqa: BLE001 - any Hub failure means "use the bundled weights"
        why = "HF_HUB_OFFLINE=1 and the repo is not cached" if constants.HF_HUB_OFFLINE else f"{type(err).__name__}: {err}"
        return ModelSource(bundled, from_hub=False, note=f"Hub repo {repo} unavailable ({why}); using bundled weights.")


def load_model(cls: type[M], folder: str | Path) -> M:
    """Load a Hub-format folder with strict key matching (a mismatched checkpoint is an error, not a warning).
    int8 folders (see `quantize_folder`) are dequantised to fp32 on the way in."""
    folder = Path(folder)
    missing = [f for f in ("config.json", "model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {' or '.join(missing)}")
    if _storage(folder / "model.safetensors") == INT8:
        return _load_int8(cls, folder).float().eval()
    model = cls.from_pretrained(str(folder), strict=True)
    return model.float().eval()


def save_model(model: nn.Module, folder: str | Path, card: str, metrics: dict | None = None, fp16: bool = True) -> Path:
    """Write model.safetensors (fp16 halves the size; loading casts back to fp32), config.json, README.md
    (the model card) and, if given, metrics.json (the numbers and training history the card quotes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(card)  # written first: save_pretrained keeps an existing card
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    to_save = model.half() if fp16 else model
    try:
        to_save.save_pretrained(str(folder))
    finally:
        model.float()
    return folder



def record_metrics(folder: str | Path, keys: tuple[str, ...], value) -> None:
    """Set metrics.json[keys[0]][keys[1]]... = value in a weight folder (the levels above it made if missing): how
    an `evaluate --write` records its scores before the card is rewritten from them."""
    path = Path(folder) / "metrics.json"
    metrics = json.loads(path.read_text())
    level = metrics
    for key in keys[:-1]:
        level = level.setdefault(key, {})
    level[keys[-1]] = value
    path.write_text(json.dumps(metrics, indent=1))

# --- int8 storage ----------------------------------------------------------------------------------------
# A quarter of fp32: every weight matrix (embeddings, LSTM and linear weights) as int8 with one fp32 scale per
# row (symmetric, the row's largest magnitude maps to 127); vectors (biases, norms) stay fp16. Rounding moves a
# weight by at most half a step (max|row| / 254), which for the sentiment classifiers changes held-out accuracy
# by hundredths of a point (their model cards give the numbers before and after).
INT8 = "int8-per-row"
_SCALE = ".int8_row_scale"  # the scales of matrix `name` are stored as `name + _SCALE`


def _storage(weights_file: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(weights_file), "pt") as f:
        return (f.metadata() or {}).get("storage", "")


def quantize_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point() and tensor.dim() >= 2:
            rows = tensor.float().reshape(tensor.shape[0], -1)  # (R, everything else)
            scale = rows.abs().amax(dim=1).clamp(min=1e-12) / 127  # (R,)
            out[name] = (rows / scale[:, None]).round().clamp(-127, 127).to(torch.int8).reshape(tensor.shape)
            out[name + _SCALE] = scale
        else:
            out[name] = tensor.half() if tensor.is_floating_point() else tensor
    return out


def dequantize_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in tensors.items():
        if name.endswith(_SCALE):
            continue
        if name + _SCALE in tensors:
            scale = tensors[name + _SCALE]
            tensor = (tensor.float().reshape(tensor.shape[0], -1) * scale[:, None]).reshape(tensor.shape)
        state[name] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def _load_int8(cls: type[M], folder: Path) -> M:
    """Build the model from config.json (dl_core's models take their config dict) and load the dequantised
    weights as strictly as from_pretrained does: only tied copies of a loaded weight may be absent."""
    from safetensors.torch import load_file

    model = cls(json.loads((folder / "config.json").read_text()))
    missing, unexpected = model.load_state_dict(dequantize_int8(load_file(str(folder / "model.safetensors"))), strict=False)
    state = model.state_dict()
    loaded = {state[name].data_ptr() for name in state if name not in missing}
    missing = [name for name in missing if state[name].data_ptr() not in loaded]  # tied weights are fine
    if missing or unexpected:
        raise RuntimeError(f"Error(s) in loading state_dict for {cls.__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
    return model


def quantize_folder(source: str | Path, out: str | Path, command: str | None = None) -> Path:
    """Copy a weight folder with its model.safetensors stored as int8 (about half an fp16 file); `out` may be
    `source` (in place). The card is copied as it is; metrics.json, if there, gains "storage": the format, the
    command (`command`, default the `python -m dl_core.hub int8` one), both file sizes, and the scores the
    source's metrics.json held (`accuracy_before_int8`), so that re-measuring the copy (e.g. `train/sentiment.py
    evaluate --write`) and rewriting its card shows both."""
    import shutil

    from safetensors.torch import load_file, save_file

    source, out = Path(source), Path(out)
    if _storage(source / "model.safetensors") == INT8:
        raise SystemExit(f"{source} is already stored as int8")
    bytes_before = (source / "model.safetensors").stat().st_size
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != source.resolve():
        for item in source.iterdir():
            if item.name != "model.safetensors" and item.is_file():
                shutil.copy2(item, out / item.name)
    tensors = quantize_int8(load_file(str(source / "model.safetensors")))
    tmp = out / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt", "storage": INT8})
    os.replace(tmp, out / "model.safetensors")
    (out / "model.safetensors").chmod(0o644)
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        metrics["storage"] = {
            "format": INT8, "command": command or f"python -m dl_core.hub int8 {source} {out}",
            "bytes_before": bytes_before, "bytes_after": (out / "model.safetensors").stat().st_size,
            "accuracy_before_int8": _recorded_accuracies(metrics),
            "note": "heldout/extra are the int8 weights' scores once re-measured (train/sentiment.py evaluate --write); "
                    "accuracy_before_int8 the fp16 ones the training run measured",
        }
        if "perplexity" in metrics.get("valid", {}):  # a language model: re-measured by train/lm.py evaluate --write
            metrics["storage"]["perplexity_before_int8"] = metrics["valid"]["perplexity"]
            metrics["storage"]["note"] = ("valid is the int8 weights' perplexity once re-measured (train/lm.py evaluate "
                                          "--write); perplexity_before_int8 the fp16 one the training run measured")
        metrics_file.write_text(json.dumps(metrics, indent=1))
    return out


def _recorded_accuracies(metrics: dict) -> dict[str, float]:
    """The accuracies a metrics.json records: "heldout" and each "extra" data set's."""
    scores = {"heldout": metrics["heldout"]["accuracy"]} if "accuracy" in metrics.get("heldout", {}) else {}
    return scores | {name: record["accuracy"] for name, record in metrics.get("extra", {}).items() if "accuracy" in record}


def save_and_push(model: nn.Module, folder: str | Path, card: str, metrics: dict, push_to: str | None = None,
                  fp16: bool = True) -> Path:
    """What every train script does at the end: write the weight folder, then push it if asked.

    A failed push (no network, no token) ends the script with a clear message; the folder is already saved.
    """
    folder = save_model(model, folder, card, metrics=metrics, fp16=fp16)
    print(f"saved {folder}")
    if push_to:
        try:
            print(f"pushed: {push_folder(folder, push_to)}")
        except RuntimeError as err:
            raise SystemExit(f"push to the Hub failed: {err}") from err
    return folder


def push_folder(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload a weight folder to the Hub; the token comes from HF_TOKEN or `hf auth login`."""
    from huggingface_hub import HfApi

    if not _hub_reachable():
        raise RuntimeError(
            "cannot reach the Hugging Face Hub (no network, or HF_HUB_OFFLINE=1): the weights are saved locally "
            f"in {folder}; push them later with: hf upload {repo_id} {folder} ."
        )
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True, private=private)
    return str(api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload trained weights"))


def recorded_train_command(card: str) -> str | None:
    """The train command an older model card recorded: the first code block of its "## Training" section (cards
    written before metrics.json kept the command; `card` commands read it once to complete such a folder)."""
    training = card.partition("## Training")[2]
    return training.split("```")[1].strip() if training.count("```") >= 2 else None


def lineage_section(lineage: list[dict], seconds: float, what: str, flag: str, describe_run) -> str:
    """The model card's list of the runs that made a folder, each trained on from the one before (`flag`),
    oldest first, then "this run" (`seconds` long); `describe_run(run)` says what one earlier run was."""
    if not lineage:
        return ""
    runs = "\n".join(f"{i}. `{run['command']}`: {describe_run(run)}" for i, run in enumerate(lineage, 1))
    total = (sum(run["seconds"] for run in lineage) + seconds) / 60
    return (f"Trained in {len(lineage) + 1} runs, each starting from the {what} the one before saved (`{flag}`), "
            f"{total:.1f} minutes in all:\n{runs}\n{len(lineage) + 1}. this run:\n")


FAST_PATH_HEADING = "## On a CPU: the app's fast path"


def with_fast_path_section(card: str, metrics: dict) -> str:
    """The card ending with the section that metrics.json's "fast_path" record gives (benchmarks/fast_quality.py
    --write measures it): what the app runs these weights as, and its held-out scores against plain fp32 eager
    PyTorch. Every card writer ends with this, so rewriting a card and rewriting only this section agree."""
    record = metrics.get("fast_path")
    if not record and FAST_PATH_HEADING not in card:
        return card
    card = card.split("\n" + FAST_PATH_HEADING)[0].rstrip("\n") + "\n"
    if not record:
        return card

    def amount(row: dict, key: str, sign: str = "") -> str:  # relative rows in percent, the others as scored
        return f"{row[key]:{sign}.2%}" if row.get("relative") else f"{row[key]:{sign}.4g}"

    rows = "\n".join(f"| {row['data']} | {row['metric']} | {row['fp32']:.4g} | {row['shipped']:.4g} | "
                     f"{amount(row, 'difference', '+')} | {amount(row, 'tolerance')} | {'yes' if row['ok'] else '**no**'} |"
                     for row in record["rows"])
    return (f"{card}\n{FAST_PATH_HEADING}\n\nThe app runs these weights as **{record['path']}** (`dl_core/fast.py`; "
            f"`DL_FAST_PATH=0` runs plain fp32). The scores above are fp32's. The two side by side on the held-out "
            f"data, from `{record['command']}`:\n\n"
            "| data | metric | fp32 eager | app's path | difference | tolerance | within |\n|---|---|---|---|---|---|---|\n"
            f"{rows}\n")


def ends_with_fast_path_section(card_writer):
    """For a card writer `(config, metrics, ...) -> card`: the same card, ending with with_fast_path_section's."""
    @functools.wraps(card_writer)
    def write(config, metrics: dict, *args, **kwargs) -> str:
        return with_fast_path_section(card_writer(config, metrics, *args, **kwargs), metrics)
    return write


def describe_hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'' if threads == 1 else 's'} ({os.cpu_count()} cores visible)"


if __name__ == "__main__":
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(description="Weight-folder tools. int8: copy a folder with int8 weights "
                                     "(one fp32 scale per matrix row); python -m dl_core.hub int8 SOURCE OUT")
    sub = parser.add_subparsers(dest="command", required=True)
    int8_cmd = sub.add_parser("int8", help="copy SOURCE to OUT with its weights stored as int8 (recorded in its metrics.json)")
    int8_cmd.add_argument("source", help="a weight folder with fp16/fp32 weights")
    int8_cmd.add_argument("out", help="the folder to write (may be SOURCE: in place)")
    args = parser.parse_args()
    folder = quantize_folder(args.source, args.out, command=f"python -m dl_core.hub {shlex.join(sys.argv[1:])}")
    storage = json.loads((folder / "metrics.json").read_text())["storage"] if (folder / "metrics.json").is_file() else {}
    before = f"{storage['bytes_before'] / 1e6:.1f} MB -> " if storage else ""
    print(f"{folder}: model.safetensors {before}{(folder / 'model.safetensors').stat().st_size / 1e6:.1f} MB"
          + ("; re-measure it (e.g. train/sentiment.py evaluate --write), then rewrite its card" if storage else ""))
