"""Where things live: the repository, its bundled weights, and the data root.

The data root is one setting: the environment variable `DL_DATA_DIR`, else `../shared/data` beside the
checkout (where this project's machines keep the downloaded data sets). Nothing under it is copied into
the repository; code that needs a data set asks `data_path(...)` and says what to do when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO_ROOT / "weights"
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """`DL_DATA_DIR` if set (read on every call, so tests and scripts may change it), else ../shared/data."""
    return Path(os.environ.get("DL_DATA_DIR") or DEFAULT_DATA_ROOT)


def data_path(*parts: str) -> Path:
    """A path under the data root (which may not exist: callers check)."""
    return data_root().joinpath(*parts)


def display_path(path: str | Path) -> str:
    """A data path as commands in the README and model cards write it: `../shared/data/...` when it lies under
    the data root, or under a `shared/data` folder elsewhere (a path recorded on another machine or checkout),
    so a card written on one machine reads the same on another; any other path as given."""
    try:
        return str(Path("../shared/data") / Path(path).resolve().relative_to(data_root().resolve()))
    except ValueError:
        pass
    parts = Path(path).parts
    for i in range(len(parts) - 1):
        if parts[i:i + 2] == ("shared", "data"):
            return str(Path("../shared/data", *parts[i + 2:]))
    return str(path)
