"""Lesson 10's GPU pipeline (train/ulmfit_gpu.py): find the inputs, tokenise them into token archives, run
one training stage in this process with its output logged, and refresh what a remote job returns.

The stages themselves (which script, which flags, which budget) are train/ulmfit_gpu.py's; this is the
machinery around them.
"""
from __future__ import annotations

import contextlib
import json
import os
import runpy
import shutil
import sys
import tarfile
import time
import traceback
from pathlib import Path

from dl_core.paths import REPO_ROOT

# dl_core.ulmfit.data is imported inside the functions that need it: it brings tqdm, which must first see the
# TQDM_* settings train/ulmfit_gpu.py's main makes.

MAX_RETURNED_FILE = 16 * 1024**2  # per-file limit of the remote job's returned files
BUNDLED = ("sentiment-lm", "sentiment", "sentiment-bwd")  # the weight folders the app ships
ARCHIVES = {"imdb": "imdb.tokens.tar.xz", "general": "general.tokens.tar.xz", "rt": "rt.tokens.tar.xz"}


def locate(data_dir: Path, archives: bool = True) -> dict[str, Path | None]:
    """The inputs: token archives in data_dir if there (and `archives`), else the raw files, in data_dir itself
    or in the ../shared/data layout (sentiment/, text/). IMDB is needed; without general text stage 1 is
    skipped (the IMDB LM then starts from random weights), without rt-polarity its evaluation and stage 5 are."""
    from dl_core.ulmfit.data import ARCHIVE_SUFFIXES

    def first(*candidates: Path) -> Path | None:
        return next((c for c in candidates if c.exists()), None)

    imdb_archives = [d / f"aclImdb_v1{suffix}" for d in (data_dir, data_dir / "sentiment") for suffix in ARCHIVE_SUFFIXES]
    found = {
        "imdb": first(*imdb_archives, data_dir / "aclImdb", data_dir / "sentiment" / "aclImdb"),
        "general": first(*(d for d in (data_dir, data_dir / "text") if (d / "wikitext-2").is_dir() or (d / "tiny-shakespeare.txt").is_file())),
        "rt": first(data_dir / "rt-polarity.pos", data_dir / "sentiment" / "rt-polarity.pos"),
    }
    if archives:
        found.update({key: data_dir / name for key, name in ARCHIVES.items() if (data_dir / name).is_file()})
    if found["imdb"] is None:
        raise FileNotFoundError(f"no {ARCHIVES['imdb']}, aclImdb_v1.tar.gz/.tar.xz or aclImdb/ in {data_dir} or {data_dir / 'sentiment'}")
    return found


def prepare(args) -> int:
    """Tokenise every input once (here, where spaCy is) into token archives for `run`."""
    from dl_core.ulmfit.data import load_tokenized, write_token_archive

    paths = locate(args.data_dir, archives=False)
    for key, path in paths.items():
        if path is None:
            print(f"{key}: not found in {args.data_dir}, skipped")
            continue
        t0 = time.perf_counter()
        data = load_tokenized(path, cache_dir=args.cache_dir, workers=args.workers, progress=True, seed=args.seed)
        archive = write_token_archive(data, args.out / ARCHIVES[key], sources=[str(path)])
        sizes = ", ".join(f"{name} {len(part)} texts / {part.corpus.n_tokens:,} tokens" for name, part in data.parts.items())
        print(f"{archive}: {archive.stat().st_size / 2**20:.1f} MiB ({sizes}) in {time.perf_counter() - t0:.0f}s", flush=True)
    return 0


class Tee:
    """Write to several streams (the stage's log file and the console)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()

    def isatty(self):
        return False


def last_json_line(log: Path) -> dict | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def publish(out: Path, work: Path, results: dict) -> None:
    """Refresh what OUT returns: the bundled weight files, folders.tar.gz (everything else), results.json."""
    for name in BUNDLED:
        weights = work / name / "model.safetensors"
        if weights.is_file():
            (out / name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(weights, out / name / "model.safetensors")
            size = weights.stat().st_size
            if size > MAX_RETURNED_FILE:
                results.setdefault("warnings", []).append(f"{name}/model.safetensors is {size / 2**20:.1f} MiB: over the 16 MiB a remote job returns")
    tmp = out / "folders.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as archive:
        for folder in sorted(p for p in work.iterdir() if p.is_dir() and p.name != "cache"):
            for file in sorted(folder.rglob("*")):
                if file.is_file() and file.name != "model.safetensors":
                    archive.add(file, arcname=str(file.relative_to(work)))
    os.replace(tmp, out / "folders.tar.gz")
    (out / "results.json").write_text(json.dumps(results, indent=1))


def script_main(name: str):
    """train/<name>.py's main(argv), loaded from its file: this file runs as a script (no `train` package on the
    path), and the stages run in this process, so CUDA starts once."""
    return runpy.run_path(str(REPO_ROOT / "train" / f"{name}.py"), run_name=f"ulmfit_stage_{name}")["main"]


def run_stage(plan: dict, budget: float, work: Path) -> dict:
    main = script_main(plan["script"])
    argv = [*plan["argv"](work), "--time-budget", f"{budget:.0f}"]
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{plan['name']}.log"
    command = f"python train/{plan['script']}.py {' '.join(argv)}"
    print(f"\n=== {plan['name']}: budget {budget:.0f}s\n{command}", flush=True)
    t0 = time.perf_counter()
    record = {"name": plan["name"], "budget_s": round(budget), "command": command}
    with open(log, "w") as f:
        f.write(command + "\n")
        try:
            # stdout (the scripts' summary lines) to the log and the console; stderr (tqdm) to the log only
            with contextlib.redirect_stdout(Tee(f, sys.__stdout__)), contextlib.redirect_stderr(f):
                main(argv)
            record["status"] = "ok"
        except BaseException as err:  # noqa: BLE001 - a failed stage is recorded; the caller decides what follows
            f.write(traceback.format_exc())
            record["status"] = f"failed: {type(err).__name__}: {err}"
            if isinstance(err, KeyboardInterrupt):
                raise
    record["seconds"] = round(time.perf_counter() - t0, 1)
    metrics_file = work / plan["name"] / "metrics.json"
    if record["status"] == "ok" and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        record["metrics"] = {k: v for k, v in metrics.items() if k not in ("history",)}
        record["epochs"] = len(metrics.get("history", []))
    else:
        record["last_json"] = last_json_line(log)
    print(f"=== {plan['name']}: {record['status']} in {record['seconds']}s", flush=True)
    return record
