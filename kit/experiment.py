"""`kit run EXPERIMENT.yaml`: the whole flow from one experiment file, through the same library calls as the
single commands (folds, train, blend, submit); it adds only the bookkeeping of what is already done.

An experiment file is a `kit.yaml` with more sections, every one optional:

    competition: {...}            # the spec (HPA by default)
    data: data/
    folds: {k: 5, seed: 42, groups: null}
    train: {epochs: ..., models: [resnet34, {name: densenet121, lr: 3e-4}], ...}
    blend: {name: blend, method: mean, thresholds: per-class, min_positives: 5, no_empty: true}
    submit: {enabled: false, dry_run: true, message: null}
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.config import Config, load_config
from kit.data import CompetitionData
from kit.errors import KitError

FOLDS_KEYS = {"k", "seed", "groups"}
BLEND_KEYS = {"name", "method", "thresholds", "min_positives", "no_empty", "allow_partial", "out"}
SUBMIT_KEYS = {"enabled", "dry_run", "message", "competition", "wait"}


@dataclass
class ExperimentResult:
    trained: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    blend: object | None = None  # kit.blend.BlendResult
    submission: object | None = None  # kit.kaggle_submit.SubmitResult


def _section(config: Config, name: str, known: set[str]) -> dict:
    values = config.section(name)
    unknown = sorted(set(values) - known)
    if unknown:
        raise KitError(f"{config.path}: unknown {name} key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return values


def run_is_complete(out_dir: Path) -> bool:
    """A fold run is done when its predictions exist (they are written last, atomically)."""
    return (out_dir / "oof.csv").is_file() and (out_dir / "test.csv").is_file()


def run_experiment(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *, submit: bool | None = None,
                   dry_run: bool | None = None, log: Callable[[str], None] = print) -> ExperimentResult:
    """Folds (if missing), every model on every fold (skipping finished runs, resuming interrupted ones),
    the blend and its submission file, then optionally the submission itself."""
    from kit.blend import blend_runs
    from kit.folds import make_folds, read_folds
    from kit.models import check_model_name
    from kit.settings import resolve_settings
    from kit.train import run_dir, train_fold

    config = load_config(path)
    spec = config.spec
    data = CompetitionData(config.data_dir(data_dir), spec)
    folds_options = _section(config, "folds", FOLDS_KEYS)
    blend_options = _section(config, "blend", BLEND_KEYS)
    submit_options = _section(config, "submit", SUBMIT_KEYS)
    runs = resolve_settings(config.section("train"), source=str(path))
    for settings in runs:
        check_model_name(settings.model)
    folds_path = Path(runs[0].folds)
    if any(Path(s.folds) != folds_path for s in runs):
        raise KitError(f"{path}: every model of one experiment must use the same folds file")
    result = ExperimentResult()

    labels = data.train_labels()
    if folds_path.is_file():
        log(f"folds: using {folds_path}")
    else:
        _, _, warnings = make_folds(labels, spec, out=folds_path, k=int(folds_options.get("k", 5)),
                                    seed=int(folds_options.get("seed", 42)), groups_file=folds_options.get("groups"))
        for warning in warnings:
            log(f"warning: {warning}")
        log(f"folds: wrote {folds_path}")
    fold_numbers = sorted(int(f) for f in read_folds(folds_path, labels["Id"].tolist())["fold"].unique())

    for settings in runs:
        for fold in fold_numbers:
            fold_settings = settings.replace(fold=fold)
            out_dir = run_dir(fold_settings)
            if run_is_complete(out_dir):
                log(f"{out_dir}: complete, skipped")
                result.skipped.append(out_dir)
                continue
            resume = (out_dir / "last.pt").is_file()
            log(f"{out_dir}: {'resuming' if resume else 'training'}")
            train_fold(fold_settings, data, out_dir, resume=resume, log=log)
            (result.resumed if resume else result.trained).append(out_dir)

    run_roots = list(dict.fromkeys(Path(s.runs) / s.run_name for s in runs))
    name = blend_options.get("name", "blend")
    result.blend = blend_runs(
        run_roots, spec, folds_path, data.root / spec.sample_submission, labels,
        blend_options.get("out", "submissions"), name, method=blend_options.get("method", "mean"),
        thresholds=blend_options.get("thresholds", "per-class"),
        min_positives=int(blend_options.get("min_positives", 5)), no_empty=bool(blend_options.get("no_empty", True)),
        allow_partial=bool(blend_options.get("allow_partial", False)), command=f"kit run {path}",
    )
    log(result.blend.table())

    if submit if submit is not None else bool(submit_options.get("enabled", False)):
        from kit.kaggle_submit import submit as kaggle_submit

        result.submission = kaggle_submit(
            result.blend.files["csv"], spec, data.root / spec.sample_submission,
            competition=submit_options.get("competition"), message=submit_options.get("message"),
            wait=bool(submit_options.get("wait", False)),
            dry_run=dry_run if dry_run is not None else bool(submit_options.get("dry_run", True)), echo=log,
        )
    return result
