"""Lesson 10 end to end on one GPU in under 8 minutes: the three ULMFiT stages, then (time permitting) the
from-scratch baseline and an rt-polarity classifier. Every stage has a time budget and stops cleanly.

    # here (spaCy is installed here, not on the GPU machine): tokenise once into token archives (~16 MB)
    python train/ulmfit_gpu.py prepare data/ulmfit --data-dir ../shared/data
    # on the GPU machine (carry data/ulmfit; dl_core must be importable: `pip install -e .`, or PYTHONPATH=. as here):
    PYTHONPATH=. PYTHONUNBUFFERED=1 python3 train/ulmfit_gpu.py run OUT --data-dir data/ulmfit   # the image's python is python3
    # the same pipeline on CPU in ~1 min (tiny data, model and budgets):
    python train/ulmfit_gpu.py run /tmp/smoke --data-dir data/ulmfit --smoke

`prepare` reads aclImdb_v1.tar.gz (or .tar.xz), wikitext-2/{valid,test}.txt + tiny-shakespeare.txt and
rt-polarity.pos/.neg from --data-dir (flat, or the ../shared/data layout with sentiment/ and text/) and writes
imdb/general/rt `.tokens.tar.xz` (dl_core/ulmfit/data.py: tokens, labels, splits; no spaCy needed to read).
`run` takes those archives, or the raw files where spaCy is installed.

Stages of `run` (each runs train/lm.py or train/sentiment.py in this process, so CUDA starts once):
  1 lm-general      general-domain LM on WikiText-2 valid+test + tiny Shakespeare          (skipped without the data)
  2 sentiment-lm    fine-tuned on the 50k IMDB review texts                                (required)
  3 sentiment       classifier: gradual unfreezing, discriminative + slanted triangular LR;
                    scored on IMDB test (25k) and zero-shot on rt-polarity's held-out 10%  (required)
  4 sentiment-bwd   the backward classifier (--backwards) from stage 3's weights; the app averages the two  (optional)
                    With --backward-lm, as in the paper: first a backward general LM (lm-general-bwd) and a
                    backward IMDB LM (sentiment-lm-bwd), then the backward classifier from that LM with
                    gradual unfreezing. About 190 s more: give --total-seconds room for it.
  5 sentiment-scratch   the same classifier without LM pretraining, same budget as stage 3 (optional, extra)
  6 lm-rt           the IMDB LM fine-tuned on rt-polarity's snippets (text only)           (optional, extra)
  7 sentiment-rt    a classifier on rt-polarity from that LM (CPU: 78.4% on the held-out 10%)   (optional, extra)
Optional stages run only if the deadline (--total-seconds) leaves room; budgets shrink to fit. --skip-optional
skips the extra ones.

OUT is kept small enough to fetch from a remote GPU job (at most 8 files of at most 16 MiB): the three bundled
weight files `sentiment-lm`, `sentiment` and `sentiment-bwd/model.safetensors` (fp16), `results.json` (every
stage's metrics and timings), and `folders.tar.gz` (every weight folder without its weights: config.json,
README.md model cards, metrics.json, plus each stage's log). All are refreshed after every stage, so a
killed run still returns what it had. Unpack with:
    mkdir -p runs/ulmfit-gpu && tar xzf OUT/folders.tar.gz -C runs/ulmfit-gpu     # cards, metrics, logs of every stage
    for m in sentiment-lm sentiment sentiment-bwd; do mkdir -p weights/$m && cp runs/ulmfit-gpu/$m/* OUT/$m/model.safetensors weights/$m/; done
    for m in sentiment sentiment-bwd; do python -m dl_core.hub int8 weights/$m weights/$m; done   # the 40 MB budget
    python train/sentiment.py evaluate --weights weights/sentiment weights/sentiment-bwd --data data/ulmfit/imdb.tokens.tar.xz --write
    for m in sentiment sentiment-bwd; do python train/sentiment.py card --weights weights/$m; done   # cards with all that
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import sys
import time
from pathlib import Path

from dl_core.paths import REPO_ROOT
from dl_core.ulmfit.pipeline import locate, prepare, publish, run_stage

# Sizes: a bundled model.safetensors must stay under 16 MiB (fp16): 14k vocabulary x 256 embedding + 3 LSTM
# layers 256 -> 512 -> 512 -> 256 is 8.1M parameters (15.4 MiB); LM + classifier 31 MB, under the 40 MB budget.
MODEL = ["--max-vocab", "14000", "--emb-dim", "256", "--hidden-dim", "512", "--n-layers", "3"]
SMOKE_MODEL = ["--max-vocab", "2000", "--emb-dim", "32", "--hidden-dim", "48", "--n-layers", "3"]


def stage_plans(args, paths: dict[str, Path | None], work: Path) -> list[dict]:
    """Each stage: name, script, argv(work) -> arguments (without --time-budget; built when the stage starts, so
    it can use what earlier stages left), planned budget, whether required, the least budget worth running."""
    smoke = args.smoke
    model = SMOKE_MODEL if smoke else MODEL
    # no per-epoch checkpoints: every stage is short, and a killed run returns what the last stage saved
    common = ["--cache-dir", str(args.cache_dir), "--mixed-precision", "no" if smoke else "bf16", "--seed", str(args.seed),
              "--checkpoint", "none"]
    if args.workers is not None:
        common += ["--workers", str(args.workers)]
    small = ["--max-texts", "300"] if smoke else []
    lm = [*common, *small, "--bptt", "30" if smoke else "70", "--bs", "16" if smoke else "256", "--epochs", "40",
          "--drop-mult", "0.25"]
    clf = [*common, *small, "--bs", "16" if smoke else "64", "--epochs", "40", "--drop-mult", "0.5"]
    rt_eval = ["--extra-eval", str(paths["rt"])] if paths["rt"] else []
    b = (lambda full, quick: quick if smoke else full)  # noqa: E731 - planned budgets in seconds

    def has_weights(folder: Path) -> bool:  # the stage that writes `folder` ran and saved its model
        return (folder / "model.safetensors").is_file()

    def init_from_general(w: Path) -> list[str]:  # stage 2 starts from stage 1's LM if stage 1 produced one
        return ["--init", str(w / "lm-general")] if has_weights(w / "lm-general") else []

    def backward_classifier_start(w: Path) -> list[str]:  # from the backward LM if that stage ran, else stage 3's weights
        if has_weights(w / "sentiment-lm-bwd"):
            return ["--lm", str(w / "sentiment-lm-bwd"), "--lr", "1e-2"]
        return ["--init-classifier", str(w / "sentiment"), "--lr", "2e-2", "--unfreeze-fraction", "0"]

    def init_from_general_bwd(w: Path) -> list[str]:  # the backward IMDB LM: from the backward general LM, else the forward IMDB LM
        start = w / "lm-general-bwd" if has_weights(w / "lm-general-bwd") else w / "sentiment-lm"
        return ["--init", str(start)] if has_weights(start) else []

    def rt_lm(w: Path) -> Path:  # the rt classifier starts from the rt-tuned LM if that stage ran, else the IMDB LM
        return w / "lm-rt" if has_weights(w / "lm-rt") else w / "sentiment-lm"

    plans = [
        dict(name="lm-general", script="lm", required=False, budget=b(20, 8), min_budget=b(10, 4),
             argv=lambda w: ["train", "--data", str(paths["general"]), "--out", str(w / "lm-general"), *lm, *model,
                             "--lr", "5e-3", "--valid-fraction", "0.02"]),
        dict(name="sentiment-lm", script="lm", required=True, budget=b(165, 10), min_budget=b(60, 4),
             argv=lambda w: ["train", "--data", str(paths["imdb"]), *init_from_general(w), "--out", str(w / "sentiment-lm"),
                             *lm, *model, "--lr", "5e-3", "--valid-fraction", "0.01", "--frozen-fraction", "0.05"]),
        dict(name="sentiment", script="sentiment", required=True, budget=b(95, 10), min_budget=b(45, 4),
             argv=lambda w: ["train", "--data", str(paths["imdb"]), "--lm", str(w / "sentiment-lm"), "--out", str(w / "sentiment"),
                             *clf, "--lr", "1e-2", *rt_eval]),
        # --backward-lm: ULMFiT's backward LMs (each text read from its end), general then IMDB
        dict(name="lm-general-bwd", script="lm", required=False, backward_lm=True, budget=b(20, 8), min_budget=b(10, 4),
             argv=lambda w: ["train", "--data", str(paths["general"]), "--backwards", "--out", str(w / "lm-general-bwd"), *lm,
                             *model, "--lr", "5e-3", "--valid-fraction", "0.02"]),
        dict(name="sentiment-lm-bwd", script="lm", required=False, backward_lm=True, budget=b(165, 10), min_budget=b(60, 4),
             argv=lambda w: ["train", "--data", str(paths["imdb"]), *init_from_general_bwd(w), "--backwards",
                             "--out", str(w / "sentiment-lm-bwd"), *lm, *model, "--lr", "5e-3", "--valid-fraction", "0.01",
                             "--frozen-fraction", "0.05"]),
        # ULMFiT's backward classifier (from the backward LM, else from the forward classifier's weights); the app averages the two
        dict(name="sentiment-bwd", script="sentiment", required=False, budget=b(95, 10), min_budget=b(45, 4),
             argv=lambda w: ["train", "--data", str(paths["imdb"]), *backward_classifier_start(w), "--backwards",
                             "--out", str(w / "sentiment-bwd"), *clf, *rt_eval]),
        dict(name="sentiment-scratch", script="sentiment", required=False, extra=True, budget=b(95, 10), min_budget=b(45, 4),
             argv=lambda w: ["train", "--data", str(paths["imdb"]), "--lm", str(w / "sentiment-lm"), "--from-scratch",
                             "--out", str(w / "sentiment-scratch"), *clf, "--lr", "5e-3", *rt_eval]),
        # rt-polarity, ULMFiT again: the IMDB LM fine-tuned on the snippets' text (labels unused), then a classifier on it
        dict(name="lm-rt", script="lm", required=False, extra=True, budget=b(15, 6), min_budget=b(8, 3),
             argv=lambda w: ["train", "--data", str(paths["rt"]), "--init", str(w / "sentiment-lm"), "--out", str(w / "lm-rt"),
                             *common, *small, "--bptt", "30" if smoke else "70", "--bs", "32", "--epochs", "6",
                             "--drop-mult", "0.3", "--min-freq", "2", "--lr", "3e-3", "--valid-fraction", "0.05"]),
        dict(name="sentiment-rt", script="sentiment", required=False, extra=True, budget=b(20, 6), min_budget=b(10, 3),
             argv=lambda w: ["train", "--data", str(paths["rt"]), "--lm", str(rt_lm(w)), "--out", str(w / "sentiment-rt"),
                             *clf, "--lr", "1e-2"]),
    ]
    return [p for p in plans if not (p["name"] in ("lm-general", "lm-general-bwd") and paths["general"] is None)
            and not (p.get("backward_lm") and not args.backward_lm)
            and not (p["name"] in ("lm-rt", "sentiment-rt") and paths["rt"] is None)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="tokenise the data into token archives (needs spaCy)")
    prep.add_argument("out", type=Path, help="folder for imdb/general/rt.tokens.tar.xz (e.g. data/ulmfit)")
    run = sub.add_parser("run", help="all stages, each on a time budget")
    run.add_argument("out", type=Path, help="folder for what comes back (weights, results.json, folders.tar.gz)")
    run.add_argument("--work-dir", type=Path, default=Path("/tmp/ulmfit-work"), help="all stage outputs (not returned)")
    run.add_argument("--total-seconds", type=float, default=470, help="deadline for the whole pipeline")
    run.add_argument("--overhead-seconds", type=float, default=25,
                     help="what a stage needs besides its fit (data, evaluation, saving): kept free before the deadline")
    run.add_argument("--smoke", action="store_true", help="tiny data, model and budgets (checks the pipeline on CPU)")
    run.add_argument("--skip-optional", action="store_true", help="only the three ULMFiT stages (no baseline, no rt stage)")
    run.add_argument("--backward-lm", action="store_true",
                     help="train backward LMs for the backward classifier, as the paper does (about 190 s more)")
    for p in (prep, run):
        p.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data" / "ulmfit")
        p.add_argument("--cache-dir", type=Path, default=Path("/tmp/ulmfit-cache"), help="token cache")
        p.add_argument("--workers", type=int, default=None, help="tokenising processes (default: all CPUs)")
        p.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    for name in ("out", "data_dir", "cache_dir", "work_dir"):  # before run's chdir to the repository
        if getattr(args, name, None) is not None:
            setattr(args, name, getattr(args, name).resolve())
    if args.command == "prepare":
        return prepare(args)
    if args.smoke:
        args.total_seconds, args.overhead_seconds = min(args.total_seconds, 150), 8

    # tqdm writes to the logs: every 10 s is plenty (the TQDM_* variables must be set before tqdm is imported)
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.chdir(REPO_ROOT)
    start = time.perf_counter()
    faulthandler.dump_traceback_later(args.total_seconds + 60, exit=False)  # a hang leaves its stack in the output

    args.out.mkdir(parents=True, exist_ok=True)
    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)  # a fresh run: no stale stage outputs
    args.work_dir.mkdir(parents=True)
    paths = locate(args.data_dir)
    import torch

    from dl_core.hub import describe_hardware

    results = {"hardware": describe_hardware(), "torch": torch.__version__, "smoke": args.smoke,
               "data": {k: str(v) if v else None for k, v in paths.items()}, "total_seconds_allowed": args.total_seconds, "stages": []}
    print(f"ULMFiT pipeline on {results['hardware']}; data {results['data']}; deadline {args.total_seconds:.0f}s", flush=True)
    exit_code = 0
    plans = stage_plans(args, paths, args.work_dir)
    for i, plan in enumerate(plans):
        if plan.get("extra") and args.skip_optional:
            continue
        elapsed = time.perf_counter() - start
        # what is left, minus this stage's overhead and the fits still owed to the required stages after it
        owed = sum(p["min_budget"] + args.overhead_seconds for p in plans[i + 1 :] if p["required"])
        budget = min(plan["budget"], args.total_seconds - elapsed - args.overhead_seconds - owed)
        if budget < plan["min_budget"]:
            if plan["required"]:
                budget = plan["min_budget"]  # a required stage runs on its minimum even past the plan
            else:
                results["stages"].append({"name": plan["name"], "status": f"skipped: {budget:.0f}s left of the deadline"})
                print(f"=== {plan['name']}: skipped ({budget:.0f}s left)", flush=True)
                continue
        record = run_stage(plan, budget, args.work_dir)
        results["stages"].append(record)
        results["elapsed_seconds"] = round(time.perf_counter() - start, 1)
        publish(args.out, args.work_dir, results)
        if record["status"] != "ok" and plan["required"]:
            print(f"required stage {plan['name']} failed; stopping (log in folders.tar.gz: logs/{plan['name']}.log)", flush=True)
            exit_code = 1
            break
    results["elapsed_seconds"] = round(time.perf_counter() - start, 1)
    publish(args.out, args.work_dir, results)
    faulthandler.cancel_dump_traceback_later()
    summary = {s["name"]: (s.get("metrics", {}).get("heldout") or s.get("metrics", {}).get("valid") or s["status"])
               for s in results["stages"]}
    accuracy = {name: v["accuracy"] for name, v in summary.items() if isinstance(v, dict) and "accuracy" in v}
    if "sentiment" in accuracy and "sentiment-scratch" in accuracy:
        results["gain_from_pretraining"] = summary["gain_from_pretraining"] = round(accuracy["sentiment"] - accuracy["sentiment-scratch"], 4)
        publish(args.out, args.work_dir, results)
    print(json.dumps({"elapsed_seconds": results["elapsed_seconds"], **summary}))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
