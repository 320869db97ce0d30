"""How far each tab's shipped path is from this CPU's peak: FLOPs per request over time, against a measured peak.

    python -m benchmarks.roofline [--repeats 10] [--only detection,style]      # from the repository root

FLOPs are counted by torch.utils.flop_counter on the fp32 reference call of benchmarks/speed.py's paths (the shipped
path does the same arithmetic in other precisions and layouts); a path whose work is in ops the counter does not see
(LSTM cells, search) shows what it does count. The peak is a large matrix product in fp32, in bf16 and through an
int8 dynamic-quantised Linear, measured here with the same threads. Prints a table and one JSON line, last: {"peak_gflops": {...}, "paths": {name: {...}}}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import speed
from benchmarks.timing import median_ms


def peak_gflops(dtype: torch.dtype | str, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n matrix product in `dtype` (what the CPU's vector units reach at best, in practice);
    "int8": through the int8 dynamic-quantised Linear the int8 paths use (fbgemm), activations quantised per call."""
    if dtype == "int8":
        from dl_core.fast import quantize_int8

        # quantize_dynamic swaps a module's children, not the module itself: the Linear goes in a Sequential
        layer, x = quantize_int8(torch.nn.Sequential(torch.nn.Linear(n, n, bias=False)), (torch.nn.Linear,)), torch.randn(n, n)
        with torch.inference_mode():
            return 2 * n**3 / (median_ms(lambda: layer(x), repeats, warmup=2) / 1000) / 1e9
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n**3 / (median_ms(lambda: a @ b, repeats, warmup=2) / 1000) / 1e9


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated tabs (default: all)")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    peaks = {"fp32": peak_gflops(torch.float32), "bf16": peak_gflops(torch.bfloat16), "int8": peak_gflops("int8")}
    rows = {}
    for tab, build in speed.PATHS.items():
        if only and tab not in only:
            continue
        for path in build():
            try:
                flops = counted_flops(path.reference)
            except RuntimeError as err:  # the counter cannot follow torch.autograd.grad (integrated gradients)
                print(f"{path.name}: FLOPs not counted ({str(err)[:80]})", file=sys.stderr)
                continue
            shipped_ms = median_ms(path.shipped, max(3, round(args.repeats * path.repeats)), warmup=2)
            achieved = flops / (shipped_ms / 1000) / 1e9
            peak = next((peaks[p] for p in ("bf16", "int8") if p in path.fast_path), peaks["fp32"])
            rows[path.name] = {"gflop": round(flops / 1e9, 3), "shipped_ms": round(shipped_ms, 1),
                               "gflops": round(achieved, 1), "of_peak": round(achieved / peak, 3), "fast_path": path.fast_path}
    print(f"peak (2048² matrix product): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s, "
          f"int8 dynamic {peaks['int8']:.0f} GFLOP/s, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}")
    print("| path | GFLOP per request (counted) | shipped ms | GFLOP/s | of the peak for its precision |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['gflop']:.3f} | {row['shipped_ms']:.1f} | {row['gflops']:.1f} | {row['of_peak']:.1%} |")
    result = {"peak_gflops": {k: round(v, 1) for k, v in peaks.items()}, "paths": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
