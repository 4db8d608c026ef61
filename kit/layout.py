"""Where every artifact lives on disk: the one module that spells out file and folder names.

Every other module asks here for a path, for "which folds exist" and for "is this run complete"; none
writes `"oof.csv"` or `f"fold{k}"` itself. This module is the contract (the table below); the README's
"Where things are" section says which command writes and reads each artifact.

    folds/folds.csv, folds/folds_summary.csv           `kit folds`
    folds/dups.csv, folds/dups_pairs.csv               `kit dups`
    runs/<name>/fold<k>/{best,last}.pt, oof.csv,       `kit train`
        test.csv, config.yaml, history.csv, train.log
    submissions/<name>.{csv,json,png,npz}              `kit blend`
    submissions/log.csv                                `kit submit`

>>> run = fold_run("runs", "resnet34", 0)
>>> run.oof.as_posix(), run.best.as_posix()
('runs/resnet34/fold0/oof.csv', 'runs/resnet34/fold0/best.pt')
>>> fold_number(Path("runs/resnet34/fold12")), fold_number(Path("runs/resnet34/notes"))
(12, None)
>>> sorted(submission_files("submissions", "blend").values())[0].as_posix()
'submissions/blend.csv'
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

FOLDS_DIR = Path("folds")
FOLDS_FILE = FOLDS_DIR / "folds.csv"
DUPS_FILE = FOLDS_DIR / "dups.csv"
RUNS_ROOT = Path("runs")
SUBMISSIONS_DIR = Path("submissions")
SUBMISSION_LOG = SUBMISSIONS_DIR / "log.csv"
SUBMISSION_KINDS = ("csv", "json", "png", "npz")  # npz: a blend fit's arrays (rank knots)
BEST_CHECKPOINT = "best.pt"  # what predicts; last.pt is what resumes
SPLITS = ("oof", "test")  # the prediction files of a run: <split>.csv
_FOLD_DIR = re.compile(r"fold(\d+)")

Pathish = str | os.PathLike


# ---------------------------------------------------------------- folds


def folds_summary(folds_file: Pathish) -> Path:
    """The per-class counts per fold written beside a folds file: folds/folds.csv -> folds/folds_summary.csv."""
    folds_file = Path(folds_file)
    return folds_file.with_name(folds_file.stem + "_summary.csv")


def dups_pairs(dups_file: Pathish = DUPS_FILE) -> Path:
    """Every near-duplicate pair, beside the groups file: folds/dups.csv -> folds/dups_pairs.csv."""
    dups_file = Path(dups_file)
    return dups_file.with_name(dups_file.stem + "_pairs.csv")


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class FoldRun:
    """The folder of one model on one fold, runs/<name>/fold<k>/, and the files `kit train` writes into it."""

    dir: Path

    @property
    def best(self) -> Path:
        return self.dir / BEST_CHECKPOINT

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    @property
    def oof(self) -> Path:
        return self.dir / "oof.csv"

    @property
    def test(self) -> Path:
        return self.dir / "test.csv"

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def history(self) -> Path:
        return self.dir / "history.csv"

    @property
    def log(self) -> Path:
        return self.dir / "train.log"

    @property
    def curves(self) -> Path:
        return self.dir / "curves.png"

    def predictions(self, split: str) -> Path:
        """oof.csv or test.csv."""
        return self.dir / f"{split}.csv"

    def checkpoint(self, name: str = BEST_CHECKPOINT) -> Path:
        return self.dir / name

    def is_complete(self) -> bool:
        """A fold run is done when its predictions exist (they are written last, atomically)."""
        return self.oof.is_file() and self.test.is_file()


def fold_dir_name(fold: int) -> str:
    return f"fold{int(fold)}"


def model_dir(runs: Pathish, name: str) -> Path:
    """runs/<name>: the folds of one model."""
    return Path(runs) / name


def run_dir(runs: Pathish, name: str, fold: int) -> Path:
    """runs/<name>/fold<k>."""
    return model_dir(runs, name) / fold_dir_name(fold)


def fold_run(runs: Pathish, name: str, fold: int) -> FoldRun:
    return FoldRun(run_dir(runs, name, fold))


def fold_number(path: Pathish) -> int | None:
    """k for a folder named fold<k>, else None."""
    match = _FOLD_DIR.fullmatch(Path(path).name)
    return int(match.group(1)) if match else None


def fold_dirs(model: Pathish) -> dict[int, Path]:
    """The fold<k> folders of a runs/<name> folder, by fold number, in fold order ({} if there are none)."""
    model = Path(model)
    if not model.is_dir():
        return {}
    found = {fold_number(child): child for child in model.iterdir() if child.is_dir()}
    found.pop(None, None)
    return dict(sorted(found.items()))


def model_dirs(root: Pathish) -> list[Path]:
    """The runs/<name> folders (holding fold<k>/ folders) directly under a runs root, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(child for child in root.iterdir() if child.is_dir() and fold_dirs(child))


# ---------------------------------------------------------------- submissions


def submission_files(out_dir: Pathish = SUBMISSIONS_DIR, name: str = "blend",
                     kinds: tuple[str, ...] = SUBMISSION_KINDS) -> dict[str, Path]:
    """{kind: <out_dir>/<name>.<kind>} for what `kit blend` writes."""
    return {kind: Path(out_dir) / f"{name}.{kind}" for kind in kinds}


def submission_report(submission: Pathish) -> Path:
    """The `kit blend` JSON beside a submission file: submissions/blend.csv -> submissions/blend.json."""
    return Path(submission).with_suffix(".json")


def submission_log(out_dir: Pathish = SUBMISSIONS_DIR) -> Path:
    """The append-only log of `kit submit` attempts beside the submissions."""
    return Path(out_dir) / "log.csv"
