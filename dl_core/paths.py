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


class DownloadError(OSError):
    """A download that failed (no network, refused, timed out, disk full); the message says what to do instead."""


def download_file(url: str, target: str | Path, timeout: float = 60) -> Path:
    """Stream `url` into `target` (through `target`.part, so a broken download never looks finished); a
    DownloadError (an OSError) when it fails."""
    import shutil
    import urllib.request

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    print(f"downloading {url} to {target}")
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (fastai-part2-demos)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url} ({err}); without network, pass local data instead") from err
    partial.rename(target)
    return target
