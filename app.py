"""The fast.ai 2018 "Deep Learning Part 2" lessons as a Gradio app: one tab per lesson model.

    python app.py            # http://127.0.0.1:7860 (on Spaces, GRADIO_SERVER_NAME/PORT are set for us)

Building the app loads no model: each tab loads its weights on first use (demos/common.py).
"""
from __future__ import annotations

import traceback

import gradio as gr

import demos
from demos.common import use_atomic_image_cache

HEADER = """# fast.ai Deep Learning Part 2 (2018), live
The models of lessons 8–14, trained on real data, running in your browser. Each tab lets you try a model on
your own input and look inside it; the panel beside it explains the lesson's idea and what to try.
Code, training scripts and model cards: see the project README."""


def build_tab(tab) -> None:
    """Lay out one tab; a tab whose build() raises becomes a tab that says why, and the others still work."""
    try:
        tab.build()
    except Exception as err:  # noqa: BLE001 - any failure of one tab's layout is shown in that tab
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        gr.Markdown(f"**This tab could not be built.** `{tab.__name__}.build()` failed:\n\n"
                    f"```\n{detail[:1000]}\n```\n\nThe other tabs are unaffected. "
                    f"Run it alone to see the whole traceback: `python -m {tab.__name__}`.",
                    elem_id=f"tab-{tab.ID}-error")


# Uploads larger than this are refused by Gradio before any handler sees them (a photo is a few MB at most).
MAX_UPLOAD = "20mb"
# Gradio keeps every upload and every output file in its cache folder: delete those older than an hour, hourly,
# so a long-running Space does not fill its disk.
CACHE_EXPIRY_SECONDS = (3600, 3600)


def build_app(tabs=None) -> gr.Blocks:
    use_atomic_image_cache()  # concurrent identical outputs must not be served half-written (see its docstring)
    with gr.Blocks(title="fast.ai Part 2 (2018), live", delete_cache=CACHE_EXPIRY_SECONDS) as app:
        gr.Markdown(HEADER)
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone the lessons wrap onto more rows, none hidden in a menu
            for tab in tabs or demos.tabs():
                with gr.Tab(tab.TITLE, id=tab.ID, elem_id=f"tab-{tab.ID}"):
                    build_tab(tab)
    # Two CPU cores: at most 2 model calls run at once (every heavy event shares concurrency_id="cpu"),
    # and at most 32 wait, so a burst of users gets a queue position rather than a timeout.
    # api_open=False closes /gradio_api/run/<name>, which would run a call at once, bypassing both limits;
    # the UI and gradio_client go through the queue and are unaffected.
    app.queue(default_concurrency_limit=2, max_size=32, api_open=False)
    return app


def serve(app: gr.Blocks, **launch_options):
    """Launch with the app's limits (app.py, `python -m demos.<topic>` and the tests all use this)."""
    return app.launch(max_file_size=MAX_UPLOAD, **launch_options)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for a server's worker threads; True if the cap was set.

    glibc gives threads that allocate at the same time arenas of their own (up to 8 per core) and seldom hands
    their free memory back, so resident memory crept up with every crowd of requests. With two arenas, 12
    concurrent users x 5 mixed requests settle at the same memory in round 2 as in round 1, at the same
    latency (`python -m benchmarks.load`; docs/benchmarks.md). A MALLOC_ARENA_MAX set by the user wins.
    """
    import ctypes
    import os

    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return False
    m_arena_max = -8  # from glibc's malloc.h
    return bool(libc.mallopt(m_arena_max, arenas))


def launch(tabs=None) -> None:
    """Seed, size torch and malloc for the 2-core CPU, and serve (the whole app, or the given tab modules alone)."""
    import torch

    limit_malloc_arenas()  # before the server starts its worker threads
    torch.manual_seed(0)
    torch.set_num_threads(2)
    serve(build_app(tabs))


if __name__ == "__main__":
    launch()
