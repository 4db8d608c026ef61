"""`kit run EXPERIMENT.yaml`: the whole flow from one experiment file, through the same library calls as the
single commands (folds, train, blend, submit); it adds only the bookkeeping of what is already done.

An experiment file is a `kit.yaml` with more sections, all optional but `train.models`:

    competition: {...}            # the spec (default: the working folder's kit.yaml's, else HPA's)
    data: data/                   # relative to the experiment file; default kit.yaml's data: with its spec,
                                  # else ./data (or --data, $KIT_DATA)
    external: [...]               # extra training sources, as in kit.yaml
    folds: {k: 5, seed: 42, groups: null}
    train: {epochs: ..., models: [resnet34, {name: densenet121, lr: 3e-4}], ...}
    blend: {name: blend, method: mean, thresholds: per-class, min_positives: 5, no_empty: true}
    submit: {enabled: false, dry_run: true, message: null}

The `folds:`, `train:`, `blend:` and `submit:` sections are read with the tables of `kit.settings`, exactly as
the single commands read them from `kit.yaml`; one difference: `kit run` submits only as a dry run unless
`submit.dry_run: false` (or `--no-dry-run`).

Paths inside the sections (runs, folds file, blend output) are relative to the working folder, as for the
single commands. Every section is checked before the first epoch, so a typo in `blend:` fails in a second,
not after hours of training.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.config import DEFAULT_CONFIG_NAME, Config, load_config
from kit.data.reading import CompetitionData
from kit.errors import KitError
from kit.layout import FoldRun, model_dir, submission_log

SECTIONS = ("competition", "data", "external", "folds", "train", "blend", "submit")
SHIPPED = Path(__file__).parent / "experiments"
# Settings that may differ between a finished run and the experiment without making the run stale.
NOT_COMPARED = {"mean", "std", "progress", "workers", "device"}
KERNEL_ONLY = ("kernel", "version", "file_name")  # submit: keys of a code competition's notebook submission


@dataclass
class ExperimentResult:
    trained: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    blend: object | None = None  # kit.blend.blending.BlendResult
    submission: object | None = None  # kit.kaggle.submit.SubmitResult


def shipped_experiments() -> list[str]:
    """Names of the experiments that come with the kit (kit/experiments/<name>.yaml)."""
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def find_experiment(name: str | os.PathLike) -> Path:
    """An experiment file: `name` if it is a file, else the shipped experiment of that name (`demo`)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = SHIPPED / f"{path.stem}.yaml"
    if path.name == str(name) and path.suffix in ("", ".yaml") and shipped.is_file():
        return shipped
    raise KitError(f"{name}: experiment file not found, and not a shipped experiment "
                   f"(shipped: {', '.join(shipped_experiments()) or 'none'})")


@dataclass
class Plan:
    """An experiment file read and checked: everything `run_experiment` needs before it starts."""

    path: Path
    config: Config
    data: CompetitionData
    runs: list  # kit.settings.Settings, one per model
    folds_path: Path
    folds: dict
    blend: dict
    submit: dict
    spec_source: str = ""  # the file whose competition: section is the spec ("" for HPA's default)


def with_working_spec(config: Config) -> tuple[Config, str]:
    """An experiment file without a `competition:` section runs on the spec of the working folder's kit.yaml,
    with its `data:` and `external:` where the experiment names none: `kit init rsna-ich-2019`, then
    `kit run EXPERIMENT` trains on RSNA's files. Without a kit.yaml here, HPA's spec (the default).
    Returns the config and the file its spec came from ("" for the default)."""
    if "competition" in config.raw:
        return config, str(config.path)
    here = Path.cwd() / DEFAULT_CONFIG_NAME
    if not here.is_file() or here.resolve() == config.path.resolve():
        return config, ""
    working = load_config(here)
    raw = {**config.raw, "competition": working.raw.get("competition")}
    if "data" not in raw and working.raw.get("data"):
        raw["data"] = str(working.base.resolve() / str(working.raw["data"]))
    if "external" not in raw and "external" in working.raw:
        raw["external"] = working.raw["external"]
    return Config(spec=working.spec, raw=raw, path=config.path), DEFAULT_CONFIG_NAME if raw["competition"] else ""


def load_experiment(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Plan:
    """Read and check an experiment file (a path, or the name of a shipped experiment); trains nothing."""
    from kit.settings import BLEND, FOLDS, SUBMIT, resolve_settings
    from kit.train.models import check_model_name

    path = find_experiment(path)
    config, spec_source = with_working_spec(load_config(path))
    unknown = sorted(set(config.raw) - set(SECTIONS))
    if unknown:
        raise KitError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    # the same tables as `kit folds`, `kit blend` and `kit submit` read these sections with
    folds = FOLDS.resolve(config.section("folds"), None, str(path))
    blend = BLEND.resolve(config.section("blend"), None, str(path))
    submit = SUBMIT.resolve(config.section("submit"), None, str(path))
    for key in KERNEL_ONLY:
        if key in config.section("submit"):
            raise KitError(f"{path}: submit.{key}: applies to `kit submit --kernel` only; `kit run` submits the "
                           "blend's file (remove the key)")
    if "dry_run" not in config.section("submit"):
        submit["dry_run"] = True  # `kit run` submits for real only when the file (or --no-dry-run) says so

    train = config.section("train")
    if not train.get("models") and not train.get("model"):
        raise KitError(f"{path}: train.models: no models listed (e.g. models: [resnet34, densenet121])")
    runs = resolve_settings(train, source=str(path))
    for settings in runs:
        try:
            check_model_name(settings.model)
        except KitError as err:
            raise KitError(f"{path}: train.models: {err}") from None
    names = [str(model_dir(s.runs, s.run_name)) for s in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise KitError(f"{path}: train.models: two entries would write {repeated[0]}; give one a different name:")
    folds_path = Path(runs[0].folds)
    if any(Path(s.folds) != folds_path for s in runs):
        raise KitError(f"{path}: train.folds: every model of one experiment must use the same folds file")
    return Plan(path, config, config.competition_data(data_dir), runs, folds_path, folds, blend, submit, spec_source)


def changed_settings(out_dir: Path, settings) -> list[str]:
    """Settings of the finished run in `out_dir` (its config.yaml) that differ from `settings`."""
    from kit.config import read_yaml
    from kit.settings import normalise

    path = FoldRun(out_dir).config
    try:
        saved = read_yaml(path)
        if not isinstance(saved, dict) or not isinstance(saved.get("train") or {}, dict):
            raise KitError(f"{path}: no train: section")
        saved = normalise(saved.get("train") or {}, check=False)
    except UnicodeDecodeError as err:
        raise KitError(f"{out_dir}: the finished run's settings cannot be read ({path}: not UTF-8 text, {err.reason}); "
                       f"delete {out_dir} to train it again") from None
    except KitError as err:  # without its settings a finished run cannot be told current: never skipped blindly
        raise KitError(f"{out_dir}: the finished run's settings cannot be read ({err}); delete {out_dir} to train "
                       "it again") from None
    return sorted(k for k, v in settings.values.items() if k not in NOT_COMPARED and saved.get(k) != v)


def run_experiment(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *, submit: bool | None = None,
                   dry_run: bool | None = None, log: Callable[[str], None] = print) -> ExperimentResult:
    """Folds (if missing), every model on every fold (skipping finished runs, resuming interrupted ones),
    the blend and its submission file, then optionally the submission itself; ends by logging the table of
    each member's and the blend's OOF score (the competition's metric).

    `submit` and `dry_run` override the file's submit.enabled and submit.dry_run.
    """
    from kit.blend.blending import blend_options, blend_runs
    from kit.data.folds import make_folds, read_folds
    from kit.train.checks import check_inits, check_plan
    from kit.train.loop import train_fold

    plan = load_experiment(path, data_dir)
    data = plan.data
    check_plan(plan.runs, data, "all", where=str(plan.path), inits=False)  # every model's whole setting set
    spec = data.spec
    log(f"competition: {spec.slug} ({'the spec of ' + plan.spec_source if plan.spec_source else 'the default spec'}"
        f"), data {data.root}")
    labels = data.train_labels()
    data.test_ids()  # a missing or broken sample submission fails now, not after training
    result = ExperimentResult()

    if plan.folds_path.is_file():
        log(f"folds: using {plan.folds_path} (delete it to split again)")
    else:
        _, _, warnings = make_folds(labels, spec, out=plan.folds_path, k=plan.folds["k"], seed=plan.folds["seed"],
                                    groups_file=plan.folds["groups"])
        for warning in warnings:
            log(f"warning: {warning}")
        log(f"folds: wrote {plan.folds_path} ({plan.folds['k']} folds)")
    fold_numbers = sorted(int(f) for f in read_folds(plan.folds_path, labels["Id"].tolist())["fold"].unique())
    if "k" in plan.config.section("folds") and plan.folds["k"] != len(fold_numbers):
        log(f"warning: {plan.folds_path} has {len(fold_numbers)} folds, the experiment asks for {plan.folds['k']}; "
            "using the file's (delete it to split again)")

    check_inits(plan.runs, data, "all", where=str(plan.path))  # against the folds file, now that it exists
    total = len(plan.runs) * len(fold_numbers)
    for settings in plan.runs:
        for fold in fold_numbers:
            fold_settings = settings.replace(fold=fold)
            run = fold_settings.fold_run
            out_dir = run.dir
            step = f"[{len(result.trained) + len(result.resumed) + len(result.skipped) + 1}/{total}] {out_dir}"
            if run.is_complete():
                changed = changed_settings(out_dir, fold_settings)
                note = f" (its settings differ: {', '.join(changed)}; delete it to train again)" if changed else ""
                log(f"{step}: complete, skipped{note}")
                result.skipped.append(out_dir)
                continue
            resume = run.last.is_file()
            log(f"{step}: {'resuming from last.pt' if resume else 'training'}")
            train_fold(fold_settings, data, out_dir, resume=resume, log=log)
            (result.resumed if resume else result.trained).append(out_dir)

    run_roots = list(dict.fromkeys(model_dir(s.runs, s.run_name) for s in plan.runs))
    blend = plan.blend
    result.blend = blend_runs(
        run_roots, spec, plan.folds_path, data.root / spec.sample_submission, labels, blend["out"], blend["name"],
        **blend_options(blend), command=f"kit run {plan.path}",
    )
    for member, reason in result.blend.left_out:
        log(f"warning: left out {member}: {reason}")
    files = result.blend.files
    log(f"blend: wrote {files['csv']} ({len(result.blend.predicted)} rows, validated), "
        + ", ".join(str(p) for kind, p in files.items() if kind != "csv"))
    if blend["track"] == "mlflow":
        from kit.track.mlflow_store import log_blend, tracking_uri

        log(f"blend: logged to MLflow ({tracking_uri()}, run {log_blend(result.blend, spec, blend, files['json'])})")

    if submit if submit is not None else plan.submit["enabled"]:
        from kit.io import sha256_file
        from kit.kaggle.log import previous_submission
        from kit.kaggle.submit import submit as kaggle_submit

        log_path = plan.submit["log"] or submission_log(blend["out"])
        competition = plan.submit["competition"] or spec.slug
        previous = None if plan.submit["force"] else previous_submission(log_path, sha256_file(files["csv"]),
                                                                           competition)
        if previous is not None:  # a rerun that changed nothing: done, not an error
            log(f"submit: {files['csv']} (these exact bytes) went to {competition} at {previous['time']}; skipped")
        else:
            result.submission = kaggle_submit(
                files["csv"], spec, data.root / spec.sample_submission, competition=competition,
                message=plan.submit["message"], wait=plan.submit["wait"], timeout=plan.submit["timeout"],
                force=plan.submit["force"],
                dry_run=dry_run if dry_run is not None else plan.submit["dry_run"], log_path=log_path, echo=log,
            )
            log(result.submission.describe())
    log("")
    from kit.blend.report import score_legend, summary_table

    log(f"OOF {spec.scorer.label} ({len(result.blend.truth)} train images, {len(fold_numbers)} folds; "
        f"{score_legend(spec.scorer)}; cv is the honest estimate):")

    log(summary_table(result.blend))
    return result
