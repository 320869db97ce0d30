"""App start-up time and memory: `python app.py` from cold to first HTTP 200, then resident memory
after every tab's model has loaded and served a request.

    python benchmarks/app_startup.py [--runs 3]
    python benchmarks/app_startup.py --phases [--runs 3]    # where the start-up goes: imports, each tab's layout, launch

Baseline, side by side: the same measurement for a bare Python process that only imports gradio and
serves an empty Blocks app, so the table shows what the project itself adds.
Targets (issue 2, 2 CPU cores): start to first 200 <= 20 s; resident memory <= 1.5 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BARE_APP = "import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('hi')\ndemo.launch()\n"
# app.py's start-up with a clock at each step (wall time, so the parent can add the interpreter's start and the wait
# for the first HTTP 200): the same calls as `python app.py`, each tab's layout timed by wrapping app.build_tab.
PHASED_APP = """
import json, time
marks = [("python starts", time.time())]
import torch
marks.append(("import torch", time.time()))
import gradio
marks.append(("import gradio (and what it imports)", time.time()))
import app, demos
marks.append(("import app, demos (the tab registry)", time.time()))
build_tab = app.build_tab
def timed_build_tab(tab):
    build_tab(tab)
    marks.append((f"lay out {tab.__name__}", time.time()))
app.build_tab = timed_build_tab
built = app.build_app()
marks.append(("queue and routes (app.build_app's rest)", time.time()))
app.serve(built, prevent_thread_lock=True)
marks.append(("launch returns", time.time()))
print(json.dumps(marks), flush=True)
while True:
    time.sleep(1)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_200(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


def rss_mb(proc: subprocess.Popen) -> float:
    parent = psutil.Process(proc.pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 1024**2


def measure(args: list[str], translate: bool) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_for_200(f"http://127.0.0.1:{port}/", proc)
        if translate:  # load every tab's model by serving one request each, as users' first clicks do
            from gradio_client import Client, handle_file
            from PIL import Image

            photo = Path("/tmp/app-startup-photo.jpg")
            Image.new("RGB", (640, 480), (90, 120, 150)).save(photo)
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            client.predict(french_text="Je suis content de te voir.", api_name="/translate")
            review = "A wonderful film. The acting is superb and the story is moving. " * 20
            client.predict(review=review, api_name="/classify")
            client.predict(review=review, api_name="/continue_text")
            client.predict(photo=handle_file(str(photo)), api_name="/detect")
            for style in ("Starry Night (Van Gogh)", "The Scream (Munch)", "The Shipwreck (Turner)", "Woman with a Hat (Matisse)"):
                client.predict(photo=handle_file(str(photo)), style=style, output_size=512, api_name="/stylise")
            client.predict(photo=handle_file(str(photo)), steps=20, api_name="/style_live")
            client.close()
        time.sleep(0.5)
        return ready - start, rss_mb(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def phases() -> list[tuple[str, float]]:
    """One phased start-up: (step, seconds) in order, the last the wait from launch to the first HTTP 200."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", PHASED_APP], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for_200(f"http://127.0.0.1:{port}/", proc)
        ready = time.time()
        line = proc.stdout.readline()
        while not line.startswith("[["):  # gradio's own lines ("Running on local URL") come first
            line = proc.stdout.readline()
        marks = json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    steps = [(marks[0][0], marks[0][1] - start)]
    steps += [(name, at - marks[i][1]) for i, (name, at) in enumerate(marks[1:])]
    return steps + [("first HTTP 200 after launch", max(0.0, ready - marks[-1][1]))]


def print_phases(runs: int) -> None:
    results = [phases() for _ in range(runs)]
    total = statistics.median(sum(seconds for _, seconds in run) for run in results)
    print(f"median of {runs} runs, 2 threads: `python app.py` from spawn to first HTTP 200 = {total:.2f} s\n")
    print("| step | seconds | share |\n|---|---|---|")
    for i, (name, _) in enumerate(results[0]):
        seconds = statistics.median(run[i][1] for run in results)
        print(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="time each step of the start-up instead")
    args = parser.parse_args()
    if args.phases:
        print_phases(args.runs)
        return
    bare = [measure(["-c", BARE_APP], translate=False) for _ in range(args.runs)]
    ours = [measure(["app.py"], translate=True) for _ in range(args.runs)]
    rows = [
        ("bare gradio app (baseline)", bare, None, None),
        ("python app.py (+1 request per tab)", ours, 20.0, 1536.0),
    ]
    print(f"median of {args.runs} runs each\n")
    print(f"| {'process':<36} | {'start->200 s':>12} | {'RSS MB':>7} | {'target s':>8} | {'target MB':>9} |")
    print(f"|{'-' * 38}|{'-' * 14}|{'-' * 9}|{'-' * 10}|{'-' * 11}|")
    for name, results, t_target, m_target in rows:
        start_s = statistics.median(r[0] for r in results)
        mem = statistics.median(r[1] for r in results)
        t_text = "" if t_target is None else f"{t_target:.0f} {'ok' if start_s <= t_target else 'NO'}"
        m_text = "" if m_target is None else f"{m_target:.0f} {'ok' if mem <= m_target else 'NO'}"
        print(f"| {name:<36} | {start_s:>12.2f} | {mem:>7.0f} | {t_text:>8} | {m_text:>9} |")
    base_start = statistics.median(r[0] for r in bare)
    print(f"\nratio app/baseline start-up: {statistics.median(r[0] for r in ours) / base_start:.2f}x")


if __name__ == "__main__":
    main()
