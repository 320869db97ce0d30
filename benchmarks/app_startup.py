"""App start-up time and memory: `python app.py` from cold to first HTTP 200, then resident memory
after every tab's model has loaded and served a request.

    python benchmarks/app_startup.py [--runs 3]

Baseline, side by side: the same measurement for a bare Python process that only imports gradio and
serves an empty Blocks app, so the table shows what the project itself adds.
Targets (issue 2, 2 CPU cores): start to first 200 <= 20 s; resident memory <= 1.5 GB.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
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
