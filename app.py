"""The fast.ai 2018 "Deep Learning Part 2" lessons as a Gradio app: one tab per lesson model.

    python app.py            # http://127.0.0.1:7860 (on Spaces, GRADIO_SERVER_NAME/PORT are set for us)

Building the app loads no model: each tab loads its weights on first use (demos/common.py).
"""
from __future__ import annotations

import traceback

import gradio as gr

import demos

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


def build_app(tabs=None) -> gr.Blocks:
    with gr.Blocks(title="fast.ai Part 2 (2018), live") as app:
        gr.Markdown(HEADER)
        with gr.Tabs():
            for tab in tabs or demos.tabs():
                with gr.Tab(tab.TITLE, id=tab.ID, elem_id=f"tab-{tab.ID}"):
                    build_tab(tab)
    # Two CPU cores: at most 2 model calls run at once (every heavy event shares concurrency_id="cpu"),
    # and at most 32 wait, so a burst of users gets a queue position rather than a timeout.
    app.queue(default_concurrency_limit=2, max_size=32)
    return app


def launch(tabs=None) -> None:
    """Seed, size torch for the 2-core CPU, and serve (the whole app, or the given tab modules alone)."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(2)
    build_app(tabs).launch()


if __name__ == "__main__":
    launch()
