"""What every benchmark here shares: median wall-clock time of a call, and a Markdown table of results."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of `fn()` over `repeats` runs, after `warmup` untimed runs (caches, lazy init)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved_median_ms(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median milliseconds of each call, timed in turn within every round, so that a machine whose speed drifts
    (shared cores) slows each of them alike and their ratio stays fair."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def print_latency_table(rows: list[tuple[str, float, float | None]], baseline_ms: float, baseline_name: str) -> None:
    """rows: (measurement, median ms, target ms or None); prints each as a ratio to the baseline too."""
    width = max(len(name) for name, _, _ in rows)
    ratio_header = f"x {baseline_name}"
    print(f"| {'measurement':<{width}} | median ms | {ratio_header} | target ms | ok  |")
    print(f"|{'-' * (width + 2)}|-----------|{'-' * (len(ratio_header) + 2)}|-----------|-----|")
    for name, ms, target in rows:
        ok = "" if target is None else ("yes" if ms <= target else "NO")
        target_text = "" if target is None else f"{target:.0f}"
        print(f"| {name:<{width}} | {ms:>9.2f} | {ms / baseline_ms:>{len(ratio_header)}.2f} | {target_text:>9} | {ok:<3} |")
