"""Whether a `kit cache` build fits on its disk, checked for every split together before anything is written.

A Kaggle notebook's /kaggle/working holds about 20 GB; a cache that does not fit would fill it part-way and
leave the session without room for its runs. The pixels still to write are the rows not yet marked done in an
existing cache's done file (a cache started over, e.g. after a spec change, writes them all again: such a
build may need more than this counts), at size x size x channels bytes each; the .npy is a sparse file, so
rows already written are already on the disk.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.errors import KitError

KAGGLE_WORKING = Path("/kaggle/working")


def rows_to_write(done: Path, rows: int) -> int:
    """Rows of a split still to decode: those whose done byte is 0 in an existing done file of `rows` bytes."""
    try:
        if done.stat().st_size == rows:
            return int((np.fromfile(done, dtype=np.uint8) == 0).sum())
    except OSError:
        pass
    return rows


def existing_parent(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_space(root: Path, splits: Sequence[tuple[str, Path, int]], sample_bytes: int) -> None:
    """`splits`: (name, done file, rows) per split to build under `root`; refuses a build that does not fit."""
    need = sum(rows_to_write(done, rows) for _, done, rows in splits) * sample_bytes
    where = existing_parent(root)
    free = shutil.disk_usage(where).free
    if need > free:
        names = ", ".join(name for name, _, _ in splits)
        kaggle = " (a Kaggle notebook's /kaggle/working holds about 20 GB)" if KAGGLE_WORKING in (where, *where.parents) \
            else ""
        raise KitError(f"{root}: the cache ({names}) needs {need / 1e9:.1f} GB, only {free / 1e9:.1f} GB free "
                       f"there{kaggle}; nothing was written. Choose another folder with --out or a smaller --size")
