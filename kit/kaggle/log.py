"""`submissions/log.csv`: one row per `kit submit` attempt, appended, never rewritten.

Each row goes out in a single `write` on a file opened with O_APPEND, so concurrent or interrupted commands
can add rows but never truncate or interleave them; the header is written only by whoever creates the file.
"""
from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timezone
from pathlib import Path

from kit.layout import SUBMISSION_LOG

COLUMNS = ("time", "file", "sha256", "competition", "message", "outcome", "score")
DEFAULT_LOG = SUBMISSION_LOG
# Outcomes that mean Kaggle holds a submission of these bytes (a scoring error still used up a submission).
SUBMITTED = ("submitted", "scored", "scoring-failed")


def _line(values) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def append_row(path: str | os.PathLike, *, file: str, sha256: str, competition: str, message: str, outcome: str,
               score: str = "", time: str | None = None) -> dict:
    """Append one attempt to the log (creating it, with its header, if needed); returns the row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"time": time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "file": file,
           "sha256": sha256, "competition": competition, "message": " ".join(str(message).split()),
           "outcome": " ".join(str(outcome).split()), "score": score}
    data = _line(row[c] for c in COLUMNS)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        data = _line(COLUMNS) + data
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if os.fstat(fd).st_size == 0:  # created by someone who died before writing the header
            data = _line(COLUMNS) + data
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    return row


def read_log(path: str | os.PathLike) -> list[dict]:
    """All rows of the log ([] if there is none); rows with missing fields are kept with blanks."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{c: (row.get(c) or "") for c in COLUMNS} for row in csv.DictReader(handle)]


def previous_submission(path: str | os.PathLike, sha256: str, competition: str) -> dict | None:
    """The last logged attempt that put these exact bytes on Kaggle for `competition`, if any."""
    for row in reversed(read_log(path)):
        if row["sha256"] == sha256 and row["competition"] == competition and \
                row["outcome"].split(":")[0].strip() in SUBMITTED:
            return row
    return None
