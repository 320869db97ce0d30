"""Minimal reproduction: Gradio can serve an output image with 0 of its declared bytes.

Gradio stores a handler's PIL/numpy image output in its cache under a folder named by the hash of the encoded
bytes (`gradio.processing_utils.save_pil_to_cache`) and writes it with `Path.write_bytes`, which truncates the
file before writing. Two requests that return the same image (two users stylising the same sample photo, say)
write the same path; while the second write is in progress, the first request's file is empty or partial, and
a client fetching it then gets a short body. (File outputs do not have this race: `save_file_to_cache` writes
under a temporary name and renames into place.)

This script writes one image from several threads while another thread reads the path back, and prints how
often a read saw fewer bytes than the encoded image has. It needs only gradio and Pillow:

    python -m benchmarks.gradio_cache_race [--writers 4] [--seconds 5]

A non-zero "short reads" count reproduces the bug; `--atomic` runs the same race with the app's workaround
(demos.common.use_atomic_image_cache: write under a temporary name, then rename into place), which reads none.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from gradio import processing_utils
from PIL import Image


def race(writers: int, seconds: float, cache_dir: str) -> dict:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    full = len(processing_utils.encode_pil_to_bytes(image, "webp"))
    path = Path(processing_utils.save_pil_to_cache(image, cache_dir))  # where every writer will write
    stop = time.monotonic() + seconds
    counts = {"writes": 0, "reads": 0, "short reads": 0, "empty reads": 0}
    lock = threading.Lock()

    def write():
        while time.monotonic() < stop:
            processing_utils.save_pil_to_cache(image, cache_dir)
            with lock:
                counts["writes"] += 1

    def read():
        while time.monotonic() < stop:
            n = len(path.read_bytes())
            with lock:
                counts["reads"] += 1
                counts["short reads"] += n < full
                counts["empty reads"] += n == 0

    threads = [threading.Thread(target=write) for _ in range(writers)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"image bytes": full, **counts}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4, help="threads writing the same output image (default: 4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to race (default: 5)")
    parser.add_argument("--atomic", action="store_true", help="with the app's workaround applied")
    args = parser.parse_args(argv)
    import gradio

    if args.atomic:
        from demos.common import use_atomic_image_cache

        use_atomic_image_cache()

    with tempfile.TemporaryDirectory() as cache_dir:
        result = race(args.writers, args.seconds, cache_dir)
    print(f"gradio {gradio.__version__}, {args.writers} writers, {args.seconds:g} s, "
          f"{'with the atomic write' if args.atomic else 'as shipped'}")
    print("| " + " | ".join(result) + " |")
    print("|" + "---|" * len(result))
    print("| " + " | ".join(str(v) for v in result.values()) + " |")


if __name__ == "__main__":
    main()
