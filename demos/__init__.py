"""The demo registry: one module per tab, each with ID, TITLE and a module-level build().

app.py renders them in this order. A module must not load anything heavy at import: models load lazily on first
use (demos.common.LazyModel), so the app starts fast and a broken tab cannot break the others. The modules are
imported when the app asks for them, so `python -m demos.<topic>` runs one tab without importing it twice.
"""
from __future__ import annotations

import importlib
from types import ModuleType

TAB_MODULES = ("detection", "sentiment", "translation", "devise", "gan", "training_lab", "style", "segmentation", "superres")


def tabs() -> list[ModuleType]:
    """The tab modules, in the app's order."""
    return [importlib.import_module(f"demos.{name}") for name in TAB_MODULES]
