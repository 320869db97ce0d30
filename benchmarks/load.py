"""A crowd on two cores: N concurrent gradio_client users send mixed requests to a locally started app.

    python -m benchmarks.load [--users 12] [--requests 5] [--rounds 2] [--timeout 300]

Starts `python app.py` on a free port (bundled weights, no network), then
1. one user sends each kind of request twice: the first loads the models, the second is the single-user latency
   every crowd latency is divided by (the baseline, on the same machine in the same run);
2. `--rounds` times, `--users` clients each send `--requests` requests (a different mix per user) at once.
Prints, per round: errors, timeouts, "queue full" answers, the p50/p95 latency as a ratio to one user alone,
and the app's resident memory (all its processes) after the round. Targets (2 cores, as on a free Space):
0 errors, memory after the last round within 10% of the first.
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


from benchmarks.app_startup import free_port, rss_mb, wait_for_200

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
STYLES = ("Starry Night (Van Gogh)", "The Scream (Munch)", "The Shipwreck (Turner)", "Woman with a Hat (Matisse)")
REVIEW = "A wonderful film. The acting is superb and the story is moving, and I would watch it again. " * 8


def request_kinds() -> dict[str, tuple[str, dict]]:
    """name -> (endpoint, keyword arguments): one of each kind of work the tabs do."""
    from gradio_client import handle_file

    photo = handle_file(str(SAMPLES / "chelsea-the-cat.jpg"))
    return {
        "detect": ("/detect", dict(photo=photo)),
        "stylise": ("/stylise", dict(photo=photo, style=STYLES[0])),
        "stylise (another style)": ("/stylise", dict(photo=photo, style=STYLES[2])),
        "live Gatys, 10 steps": ("/style_live", dict(photo=photo, style=STYLES[1], image_size=128, steps=10)),
        "translate": ("/translate", dict(french_text="Je suis content de te voir.")),
        "classify": ("/classify", dict(review=REVIEW)),
        "continue text": ("/continue_text", dict(review=REVIEW[:200], words_to_generate=20)),
    }


@dataclass
class Outcome:
    kind: str
    seconds: float
    error: str = ""  # "" when the request succeeded
    timed_out: bool = False


@dataclass
class Round:
    outcomes: list[Outcome] = field(default_factory=list)
    rss_mb: float = 0.0


def one_request(client, kind: str, endpoint: str, kwargs: dict, timeout: float) -> Outcome:
    start = time.perf_counter()
    job = client.submit(api_name=endpoint, **kwargs)
    try:
        job.result(timeout=timeout)
        return Outcome(kind, time.perf_counter() - start)
    except futures.TimeoutError:
        job.cancel()
        return Outcome(kind, time.perf_counter() - start, error="timeout", timed_out=True)
    except Exception as err:  # noqa: BLE001 - every failure is counted and shown, not raised
        return Outcome(kind, time.perf_counter() - start, error=f"{type(err).__name__}: {err}"[:200])


def user(url: str, user_index: int, n_requests: int, kinds: dict, timeout: float, barrier: threading.Barrier) -> list[Outcome]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    names = list(kinds)
    barrier.wait()  # every client connected: the crowd arrives at once
    outcomes = []
    for i in range(n_requests):
        kind = names[(user_index + i) % len(names)]
        endpoint, kwargs = kinds[kind]
        outcomes.append(one_request(client, kind, endpoint, kwargs, timeout))
    client.close()
    return outcomes


def crowd(url: str, n_users: int, n_requests: int, kinds: dict, timeout: float) -> list[Outcome]:
    barrier = threading.Barrier(n_users)
    with futures.ThreadPoolExecutor(n_users) as pool:
        jobs = [pool.submit(user, url, i, n_requests, kinds, timeout, barrier) for i in range(n_users)]
        return [outcome for job in jobs for outcome in job.result()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(rounds: list[Round], single: dict[str, float], start_rss: float, args) -> bool:
    print(f"\n{args.users} users x {args.requests} mixed requests per round; latency as a ratio to one user alone "
          f"(same request, same machine, this run)\n")
    print("| round | requests | errors | timeouts | queue full | p50 ratio | p95 ratio | p50 s | p95 s | RSS MB after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| one user, warm | {len(single)} | 0 | 0 | 0 | 1.00 | 1.00 | {statistics.median(single.values()):.2f} | "
          f"{max(single.values()):.2f} | {start_rss:.0f} |")
    for i, rnd in enumerate(rounds, 1):
        done = [o for o in rnd.outcomes if not o.error]
        ratios = [o.seconds / single[o.kind] for o in done] or [float("nan")]
        seconds = [o.seconds for o in done] or [float("nan")]
        full = sum("queue is full" in o.error.lower() for o in rnd.outcomes)
        errors = sum(bool(o.error) and not o.timed_out for o in rnd.outcomes)
        print(f"| {i} | {len(rnd.outcomes)} | {errors} | {sum(o.timed_out for o in rnd.outcomes)} | {full} | "
              f"{statistics.median(ratios):.2f} | {percentile(ratios, 0.95):.2f} | {statistics.median(seconds):.2f} | "
              f"{percentile(seconds, 0.95):.2f} | {rnd.rss_mb:.0f} |")
    for rnd in rounds:
        for o in rnd.outcomes:
            if o.error:
                print(f"  {o.kind}: {o.error}")
    growth = rounds[-1].rss_mb / rounds[0].rss_mb - 1
    clean = not any(o.error for rnd in rounds for o in rnd.outcomes)
    print(f"\nmemory after round {len(rounds)} vs round 1: {growth:+.1%} (target within 10%); "
          f"errors and timeouts: {'none' if clean else 'SOME (listed above)'}")
    return clean and abs(growth) <= 0.10


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=12, help="concurrent clients (default: 12)")
    parser.add_argument("--requests", type=int, default=5, help="requests per client per round (default: 5)")
    parser.add_argument("--rounds", type=int, default=2, help="crowd rounds (default: 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a request counts as timed out (default: 300)")
    parser.add_argument("--kinds", nargs="+", metavar="KIND", help="only these kinds of request (default: all)")
    parser.add_argument("--app-log", type=Path, help="write the app's output here (tracebacks of failed requests)")
    args = parser.parse_args(argv)

    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(args.app_log, "w") if args.app_log else subprocess.DEVNULL  # noqa: SIM115 - closed with the app
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_200(url, proc)
        kinds = request_kinds()
        if args.kinds:
            unknown = set(args.kinds) - set(kinds)
            if unknown:
                sys.exit(f"unknown kinds {sorted(unknown)}; choose from {sorted(kinds)}")
            kinds = {name: kinds[name] for name in args.kinds}
        client = Client(url, verbose=False)
        single = {}
        for kind, (endpoint, kwargs) in kinds.items():
            for attempt in range(2):  # the first call of a kind loads its model; the second is the baseline
                outcome = one_request(client, kind, endpoint, kwargs, args.timeout)
                if outcome.error:
                    sys.exit(f"{kind} fails for a single user: {outcome.error}")
            single[kind] = outcome.seconds
        client.close()
        start_rss = rss_mb(proc)
        rounds = []
        for _ in range(args.rounds):
            outcomes = crowd(url, args.users, args.requests, kinds, args.timeout)
            time.sleep(1.0)  # let the last responses' buffers go
            rounds.append(Round(outcomes, rss_mb(proc)))
        ok = report(rounds, single, start_rss, args)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if args.app_log:
            log.close()
    print("targets met" if ok else "targets NOT met")


if __name__ == "__main__":
    main()
