"""`kit lb`: every blend's cross-validated score beside the leaderboard scores of the submissions made from it.

The join: a blend is `<out>/<name>.json` (from `kit blend`) with its `<name>.csv`; `submissions/log.csv` says which
bytes went up (sha256) with which message; Kaggle's submission list (refreshed through the official client)
gives each submission's public and private score, matched to its log row by the submission's description (the
logged message), oldest with oldest when one message was used more than once. A logged submission whose bytes are
no blend's CSV any more (the file was rewritten since) is listed without cv scores.

Out of line: the gap of a submission is public minus cv. One is flagged when its gap is more than 3 robust
standard deviations (1.4826 x the median absolute deviation) and more than 0.01 away from the median gap of
the others: a blend whose cv and leaderboard disagree far more than the rest (overfit thresholds, a leak, a
fold that does not match the test set).
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.io import sha256_file
from kit.kaggle.log import SUBMITTED, read_log

FLAVOURS = ("at_0.5", "tuned", "cv")
OUTLIER_SIGMAS = 3.0
OUTLIER_MIN_GAP = 0.01


@dataclass
class Blend:
    name: str
    json: Path
    csv: Path
    scores: dict[str, float]  # at_0.5, tuned, cv


@dataclass
class Entry:
    """One logged submission: its blend (None when its bytes are no blend's CSV now) and its Kaggle scores."""

    time: str
    file: str
    sha256: str
    message: str
    blend: Blend | None
    public: float | None = None
    private: float | None = None
    status: str = ""
    flagged: bool = False

    @property
    def cv(self) -> float | None:
        return self.blend.scores.get("cv") if self.blend else None

    @property
    def gap(self) -> float | None:
        return None if self.cv is None or self.public is None else self.public - self.cv


@dataclass
class Leaderboard:
    entries: list[Entry]
    spearman: float | None
    median_gap: float | None
    files: dict[str, Path] = field(default_factory=dict)

    def points(self) -> list[Entry]:
        """The entries with both a cv and a public score (the scatter's points)."""
        return [e for e in self.entries if e.cv is not None and e.public is not None]


def read_blends(folder: str | os.PathLike) -> dict[str, Blend]:
    """{sha256 of the CSV: Blend} for every `kit blend` JSON in `folder` whose CSV is there."""
    found = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        scores = meta.get("blend", {}).get("score") if isinstance(meta, dict) and isinstance(meta.get("blend"),
                                                                                             dict) else None
        csv = path.with_suffix(".csv")
        if not isinstance(scores, dict) or not csv.is_file():
            continue
        values = {k: float(scores[k]) for k in FLAVOURS if isinstance(scores.get(k), (int, float))}
        found[sha256_file(csv)] = Blend(str(meta.get("name") or path.stem), path, csv, values)
    return found


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def join(log_rows: list[dict], blends: dict[str, Blend], kaggle: list | None) -> list[Entry]:
    """Log rows that put a file on Kaggle, each with its blend and (from `kaggle`, Kaggle's submission list, or
    the log's own score column when None) its scores."""
    entries = [Entry(row["time"], row["file"], row["sha256"], row["message"], blends.get(row["sha256"]),
                     public=_number(row["score"]))
               for row in log_rows if row["outcome"].split(":")[0].strip() in SUBMITTED and row["sha256"]]
    if kaggle is None:
        return entries
    by_message = defaultdict(list)
    for submission in sorted(kaggle, key=lambda s: (s.date, s.ref)):  # oldest first, as the log
        by_message[" ".join(submission.description.split())].append(submission)
    for entry in entries:
        waiting = by_message.get(entry.message)
        if waiting:
            submission = waiting.pop(0)
            entry.public, entry.private = _number(submission.public_score), _number(submission.private_score)
            entry.status = submission.status
    return entries


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (scipy), None with fewer than 3 points or a constant side."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def flag_outliers(entries: list[Entry]) -> float | None:
    """Flag the entries whose cv-vs-public gap is out of line (see the module docstring); returns the median gap."""
    import numpy as np

    with_gap = [e for e in entries if e.gap is not None]
    if not with_gap:
        return None
    gaps = np.array([e.gap for e in with_gap])
    median = float(np.median(gaps))
    if len(with_gap) < 3:
        return median
    for entry, gap in zip(with_gap, gaps):
        others = np.delete(gaps, with_gap.index(entry))
        centre = np.median(others)
        spread = 1.4826 * np.median(np.abs(others - centre))
        entry.flagged = bool(abs(gap - centre) > max(OUTLIER_SIGMAS * spread, OUTLIER_MIN_GAP))
    return median


def leaderboard(folder: str | os.PathLike, log_path: str | os.PathLike, competition: str, refresh: bool = True,
                limit: int = 100, plot: bool = True, policy=None) -> Leaderboard:
    """The joined table (see the module docstring); with `plot`, `<folder>/lb.png` (cv against public)."""
    rows = [r for r in read_log(log_path) if r["competition"] == competition]
    if not rows:
        raise KitError(f"{log_path}: no submission to {competition} logged (kit submit writes it)")
    kaggle = None
    if refresh:
        from kit.kaggle.submit import list_submissions

        kaggle = list_submissions(competition, limit=limit, policy=policy)
    entries = join(rows, read_blends(folder), kaggle)
    median_gap = flag_outliers(entries)
    board = Leaderboard(entries, None, median_gap)
    points = board.points()
    board.spearman = spearman([e.cv for e in points], [e.public for e in points])
    if plot and points:
        board.files["png"] = plot_scatter(board, Path(folder) / "lb.png")
    return board


def plot_scatter(board: Leaderboard, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kit import io

    points = board.points()
    figure, axis = plt.subplots(figsize=(7, 6))
    cv, public = [e.cv for e in points], [e.public for e in points]
    colours = ["tab:red" if e.flagged else "tab:blue" for e in points]
    axis.scatter(cv, public, c=colours, zorder=3)
    for entry in points:
        axis.annotate(entry.blend.name + (" (out of line)" if entry.flagged else ""), (entry.cv, entry.public),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)
    low, high = min(cv + public), max(cv + public)
    axis.plot([low, high], [low, high], color="grey", lw=0.8, ls="--", label="public = cv")
    rho = "n/a (fewer than 3 points)" if board.spearman is None else f"{board.spearman:.3f}"
    axis.set(xlabel="cv (cross-validated OOF score)", ylabel="public leaderboard score",
             title=f"cv against public: Spearman {rho}")
    axis.legend(loc="lower right")
    figure.tight_layout()
    with io.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return out


def table(board: Leaderboard) -> str:
    def show(value):
        return "" if value is None else f"{value:.4f}"

    head = f"{'submitted':<20} {'blend':<16} {'at_0.5':>7} {'tuned':>7} {'cv':>7} {'public':>7} {'private':>7} " \
           f"{'gap':>8}"
    lines = [head]
    for e in board.entries:
        scores = e.blend.scores if e.blend else {}
        name = e.blend.name if e.blend else f"({Path(e.file).name}: rewritten since)"
        lines.append(f"{e.time:<20} {name:<16} {show(scores.get('at_0.5')):>7} {show(scores.get('tuned')):>7} "
                     f"{show(e.cv):>7} {show(e.public):>7} {show(e.private):>7} "
                     f"{('' if e.gap is None else f'{e.gap:+.4f}'):>8}" + ("  out of line" if e.flagged else ""))
    return "\n".join(lines)
