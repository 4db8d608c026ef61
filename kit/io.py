"""Files in and out. Writes are atomic: every artifact goes to a temporary name beside its target, then is
renamed into place, so an interrupted command never leaves a half-written file where a later command would
read it. Reads of CSV files turn every way a file can be unreadable into one KitError naming it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kit.errors import KitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except (FileExistsError, NotADirectoryError):
        raise KitError(f"{path}: cannot write there, a file stands where a folder of that path should be") from None
    except OSError as err:
        raise KitError(f"{path}: cannot write there ({err.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates the file owner-only; give the artifact the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that replaces `path` when closed without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def write_csv(frame, path: str | os.PathLike, **kwargs) -> Path:
    """Write a pandas DataFrame as CSV atomically (no index unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, **kwargs)
    return Path(path)


def read_csv(path: str | os.PathLike, what: str = "file", **kwargs):
    """pandas.read_csv, where a missing, empty, binary or malformed file is one KitError naming it.

    A byte-order mark (as Excel writes) is ignored. `what` names the file in the message (e.g. 'folds file')."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: {what} not found")
    try:
        return pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except UnicodeDecodeError as err:
        raise KitError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise KitError(f"{path}: not a readable CSV ({str(err).strip().splitlines()[0]})") from None


def write_yaml(path: str | os.PathLike, data) -> Path:
    import yaml

    return write_text(path, yaml.safe_dump(data, sort_keys=False))


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
