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

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO_ROOT / "weights"
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
    if settings.is_file():
        repos = json.loads(settings.read_text())
        return repos.get(name) or None
    return None


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
    """Load a Hub-format folder with strict key matching (a mismatched checkpoint is an error, not a warning)."""
    folder = Path(folder)
    missing = [f for f in ("config.json", "model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {' or '.join(missing)}")
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


def save_and_push(model: nn.Module, folder: str | Path, card: str, metrics: dict, push_to: str | None = None) -> Path:
    """What every train script does at the end: write the weight folder, then push it if asked.

    A failed push (no network, no token) ends the script with a clear message; the folder is already saved.
    """
    folder = save_model(model, folder, card, metrics=metrics)
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


def lineage_section(lineage: list[dict], seconds: float, what: str, flag: str, describe_run) -> str:
    """The model card's list of the runs that made a folder, each trained on from the one before (`flag`),
    oldest first, then "this run" (`seconds` long); `describe_run(run)` says what one earlier run was."""
    if not lineage:
        return ""
    runs = "\n".join(f"{i}. `{run['command']}`: {describe_run(run)}" for i, run in enumerate(lineage, 1))
    total = (sum(run["seconds"] for run in lineage) + seconds) / 60
    return (f"Trained in {len(lineage) + 1} runs, each starting from the {what} the one before saved (`{flag}`), "
            f"{total:.1f} minutes in all:\n{runs}\n{len(lineage) + 1}. this run:\n")


def describe_hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} cores visible)"
