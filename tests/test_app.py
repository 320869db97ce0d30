"""The app shell: the tab registry, a tab that fails to build, one tab served alone."""
import types

import gradio as gr

import app as app_module
import demos
from demos import common


def _tab(tab_id: str, build) -> types.ModuleType:
    module = types.ModuleType(f"demos.{tab_id}")
    module.ID, module.TITLE, module.build = tab_id, f"Tab {tab_id}", build
    return module


def test_every_registered_tab_has_an_id_a_title_and_a_build():
    assert len({tab.ID for tab in demos.tabs()}) == len(demos.tabs()) >= 4
    assert all(isinstance(tab.TITLE, str) and callable(tab.build) for tab in demos.tabs())


def test_a_tab_whose_build_raises_becomes_an_error_tab_and_the_others_still_build():
    def broken():
        gr.Markdown("half a layout")
        raise RuntimeError("config.json: unexpected key 'grids'")

    good = _tab("good", lambda: gr.Markdown("fine", elem_id="good-text"))
    blocks = app_module.build_app([_tab("broken", broken), good])
    texts = {getattr(block, "elem_id", None): getattr(block, "value", None) for block in blocks.blocks.values()}
    error = texts["tab-broken-error"]
    assert "could not be built" in error and "unexpected key 'grids'" in error and "python -m demos.broken" in error
    assert texts["good-text"] == "fine"


def test_launch_alone_serves_just_that_tab(monkeypatch):
    monkeypatch.setattr(app_module, "limit_malloc_arenas", lambda: False)  # a server's setting, not the test run's
    served = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: served.append(self))
    tab = _tab("solo", lambda: gr.Markdown("solo", elem_id="solo-text"))
    common.launch_alone(tab)
    (blocks,) = served
    ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    assert {"tab-solo", "solo-text"} <= ids and not any(f"tab-{t.ID}" in ids for t in demos.tabs())


def test_the_app_writes_output_images_atomically_so_concurrent_identical_outputs_are_never_served_empty(tmp_path, monkeypatch):
    from gradio import processing_utils

    from benchmarks.gradio_cache_race import race

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)  # undone after
    app_module.build_app(tabs=[_tab("solo", lambda: gr.Markdown("solo"))])
    result = race(writers=3, seconds=1.0, cache_dir=str(tmp_path))
    assert result["writes"] > 10 and result["reads"] > 100
    assert result["short reads"] == 0, result


def test_uploads_and_outputs_expire_from_gradios_cache():
    blocks = app_module.build_app(tabs=[_tab("solo", lambda: gr.Markdown("solo"))])
    frequency, age = blocks.delete_cache
    assert age <= 3600 and frequency <= 3600  # a long-running Space must not keep every upload forever


def test_malloc_arenas_are_capped_unless_the_user_chose_a_cap():
    """Run in a fresh interpreter each: the cap is process-wide and must not change how the test run allocates."""
    import os
    import platform
    import subprocess
    import sys

    def capped(**env) -> str:
        code = "import app; print(app.limit_malloc_arenas())"
        environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                              cwd=app_module.__file__.rsplit("/", 1)[0], timeout=120).stdout.strip()

    assert capped(MALLOC_ARENA_MAX="4") == "False"  # the user's setting wins
    if platform.libc_ver()[0] == "glibc":
        assert capped() == "True"


def test_building_the_app_imports_no_model_machinery():
    """Start-up serves the page before any model is needed: building every tab must not import torchvision (it imports
    torch._dynamo, about 4 s on 2 cores) or accelerate (boto3 and more, 0.5 s). A fresh interpreter: this test run
    has imported both long ago. `python benchmarks/app_startup.py --phases` times each step."""
    import subprocess
    import sys

    code = ("import sys, app; app.build_app(); "
            "print(sorted(m for m in ('torchvision', 'torch._dynamo', 'accelerate') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=app_module.__file__.rsplit("/", 1)[0])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
