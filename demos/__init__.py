"""The demo registry: one module per tab, each with ID, TITLE and a module-level build().

app.py renders them in this order. A module must not load anything heavy at import: models load lazily
on first use (demos.common.LazyModel), so the app starts fast and a broken tab cannot break the others.
"""
from demos import detection, sentiment, style, translation

TABS = [detection, sentiment, translation, style]
