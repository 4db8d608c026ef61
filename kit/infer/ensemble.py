"""A saved ensemble, read back from a `kit blend` JSON: its members' fold checkpoints, the fitted blend and
the thresholds, each checked before any image is read."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.blend.state import FittedBlend, read_state
from kit.data.spec import CompetitionSpec, spec_from_dict
from kit.errors import KitError
from kit.layout import BEST_CHECKPOINT, FoldRun, fold_dir_name


@dataclass
class EnsembleMember:
    name: str
    path: Path  # the member's run folder (holding fold<k>/best.pt)
    folds: list[int]

    def fold_dir(self, fold: int) -> Path:
        return self.path / fold_dir_name(fold)

    def fold_run(self, fold: int) -> FoldRun:
        return FoldRun(self.fold_dir(fold))


@dataclass
class Ensemble:
    """Everything `kit infer` applies: members (in the blend's order), the fit, the thresholds."""

    source: Path  # the blend JSON
    spec: CompetitionSpec
    members: list[EnsembleMember]
    state: FittedBlend
    thresholds: np.ndarray
    threshold_mode: str
    no_empty: bool
    train_rates: np.ndarray | None
    global_threshold: float | None
    fallback: list[int]
    report: dict  # the whole JSON
    ratio_rates: np.ndarray | None = None  # ratio mode: the rates matched (the prior's where given, else the train's)
    twin_pairs: list[tuple[str, str]] | None = None  # `--dups`: the test-test pairs whose scores are averaged
    copied_labels: dict[str, list[int]] | None = None  # `--leak copy`: test Id -> the class indices it gets


def _member_path(raw: str, json_path: Path) -> Path | None:
    """A member's run folder: as written (absolute, or relative to the working folder, as `kit blend` wrote it),
    else relative to the JSON's folder (a bundle's `models/<member>`)."""
    path = Path(raw)
    if path.is_absolute():
        return path if path.is_dir() else None
    for candidate in (path, json_path.parent / path):
        if candidate.is_dir():
            return candidate
    return None


def read_blend_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: blend file not found (written by `kit blend` as submissions/<name>.json)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise KitError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(report, dict) or not isinstance(report.get("members"), list) or not report["members"]:
        raise KitError(f"{path}: not a `kit blend` JSON (no members)")
    return report


def load_ensemble(path: str | os.PathLike) -> Ensemble:
    """Read and check a blend JSON: every member's run folder and each of its folds' best.pt must exist."""
    path = Path(path)
    report = read_blend_json(path)
    for key in ("competition", "thresholds", "state"):
        if report.get(key) is None:
            raise KitError(f"{path}: no {key!r} entry; blend again with this version of kit to apply it elsewhere")
    spec = spec_from_dict(report["competition"], f"{path} (competition)")
    state = read_state(report["state"], path)
    members = []
    for i, entry in enumerate(report["members"]):
        name = str(entry.get("name") or f"member {i}")
        folds = entry.get("folds")
        if not isinstance(folds, list) or not folds:
            raise KitError(f"{path}: member {name}: no folds listed")
        raw = str(entry.get("path") or name)
        found = _member_path(raw, path)
        if found is None:
            raise KitError(f"{path}: member {name}: run folder {raw} not found (looked in the working folder and "
                           f"beside the JSON)")
        member = EnsembleMember(name, found, [int(f) for f in folds])
        for fold in member.folds:
            checkpoint = member.fold_run(fold).best
            if not checkpoint.is_file():
                raise KitError(f"{path}: member {name}: fold {fold} has no {BEST_CHECKPOINT} ({checkpoint})")
        members.append(member)
    if len(state.weights) != len(members):
        raise KitError(f"{path}: the blend state has {len(state.weights)} weights for {len(members)} members")
    thresholds = report["thresholds"]
    missing = [c for c in spec.classes if c not in thresholds]
    if missing:
        raise KitError(f"{path}: no threshold for class {missing[0]!r}")
    classes = list(spec.classes)
    rates = report.get("train_rates")
    fallback = [classes.index(c) for c in report.get("fallback_classes") or [] if c in classes]
    mode = str(report.get("threshold_mode") or "per-class")
    if mode == "ratio" and rates is None:
        raise KitError(f"{path}: ratio thresholds need the train rates ('train_rates'); blend again")
    twin_pairs, copied_labels = read_duplicates(report.get("duplicates"), path, len(classes))
    return Ensemble(
        source=path, spec=spec, members=members, state=state,
        thresholds=np.array([float(thresholds[c]) for c in classes]), threshold_mode=mode,
        no_empty=bool(report.get("no_empty", True)),
        train_rates=None if rates is None else np.asarray(rates, dtype=np.float64),
        global_threshold=report.get("global_threshold"), fallback=fallback, report=report,
        ratio_rates=None if mode != "ratio" else ratio_rates(report.get("prior"), rates, classes, path),
        twin_pairs=twin_pairs, copied_labels=copied_labels,
    )


def ratio_rates(prior, train_rates, classes: list[str], path: Path) -> np.ndarray:
    """The rates `kit blend` matched its ratio thresholds to: the prior's (`--prior`) where it gives one, else
    the train rate, as `kit.score.thresholds.fit_thresholds` does."""
    rates = np.asarray(train_rates, dtype=np.float64)
    if len(rates) != len(classes):
        raise KitError(f"{path}: 'train_rates' has {len(rates)} values for {len(classes)} classes")
    if prior is None:
        return rates
    if not isinstance(prior, dict) or any(c not in classes for c in prior):
        raise KitError(f"{path}: 'prior' must map class names of the competition to rates")
    rates = rates.copy()
    for name, rate in prior.items():
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise KitError(f"{path}: prior: class {name!r}: rate {rate!r} is not a number in [0, 1]")
        rates[classes.index(name)] = float(rate)
    return rates


def read_duplicates(entry, path: Path, num_classes: int) -> tuple[list[tuple[str, str]] | None, dict | None]:
    """The JSON's "duplicates" entry (`kit blend --dups`): the test-test pairs averaged over and, with
    `--leak copy`, each copied test Id's class indices; (None, None) for a blend without pairs."""
    if entry is None:
        return None, None
    if not isinstance(entry, dict) or "test_pairs" not in entry or "copied_labels" not in entry:
        raise KitError(f"{path}: the blend used duplicate pairs but its JSON does not carry them (no 'test_pairs' / "
                       "'copied_labels'); blend again with this version of kit")
    pairs, copied = entry["test_pairs"], entry["copied_labels"]
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise KitError(f"{path}: duplicates.test_pairs must be a list of [Id1, Id2] pairs")
    if not isinstance(copied, dict) or not all(
            isinstance(v, list) and all(isinstance(c, int) and 0 <= c < num_classes for c in v)
            for v in copied.values()):
        raise KitError(f"{path}: duplicates.copied_labels must map test Ids to lists of class indices "
                       f"0..{num_classes - 1}")
    return [(str(a), str(b)) for a, b in pairs], {str(k): list(v) for k, v in copied.items()}
