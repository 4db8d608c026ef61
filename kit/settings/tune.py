"""The `tune:` section of `kit.yaml`: what `kit tune` searches (`space:`) and how (trials, folds, sampler, pruner,
where the study lives). The base settings of every trial are the `train:` section.

>>> space = parse_space({"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True}, "loss": ["bce", "focal"]}, "tune.space")
>>> sorted(space), space["lr"].kind, space["loss"].choices
(['loss', 'lr'], 'float', ['bce', 'focal'])
>>> parse_space({"lr": {"low": 1.0e-3, "high": 1.0e-4}}, "kit.yaml: tune.space")
Traceback (most recent call last):
kit.errors.KitError: kit.yaml: tune.space.lr: empty range: low 0.001 is not below high 0.0001
>>> parse_space({"learning_rate": [0.1]}, "kit.yaml: tune.space")  # doctest: +ELLIPSIS
Traceback (most recent call last):
kit.errors.KitError: kit.yaml: tune.space.learning_rate: not a train: setting (known: model, ...
"""
from __future__ import annotations

from dataclasses import dataclass

from kit.errors import KitError
from kit.settings.fields import Field, Table
from kit.settings.train import FIELD

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "threshold", "none")
NOT_SEARCHABLE = ("fold", "name", "runs", "folds", "progress", "device", "workers", "track", "time_limit",
                  "checkpoint_every")  # where and how a run goes, not what it learns


@dataclass(frozen=True)
class Dimension:
    """One searched `train:` setting: a categorical choice, or a float/int range (log-scaled, or stepped)."""

    name: str
    kind: str  # "categorical" | "float" | "int"
    choices: list | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None


def _dimension(name: str, spec, where: str) -> Dimension:
    if name not in FIELD:
        raise KitError(f"{where}: not a train: setting (known: {', '.join(FIELD)})")
    if name in NOT_SEARCHABLE:
        raise KitError(f"{where}: says where or how a run goes, not what it learns; set it in train: instead")
    field = FIELD[name]
    if isinstance(spec, list):
        if not spec:
            raise KitError(f"{where}: empty list of choices")
        for value in spec:
            field.coerce(value, where)  # each choice must be a valid value of the setting
        return Dimension(name, "categorical", choices=list(spec))
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec):
        raise KitError(f"{where}: expected a list of choices or {{low: .., high: .., log: true|false}}")
    unknown = sorted(set(spec) - {"low", "high", "log", "step"})
    if unknown:
        raise KitError(f"{where}: unknown key(s) {', '.join(unknown)}; known: low, high, log, step")
    if field.type not in (int, float):
        raise KitError(f"{where}: {name} is not a number; give a list of choices")
    low, high = field.coerce(spec["low"], f"{where}.low"), field.coerce(spec["high"], f"{where}.high")
    if low is None or high is None or not low < high:
        raise KitError(f"{where}: empty range: low {low} is not below high {high}")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise KitError(f"{where}: a log range needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None and (log or not isinstance(step, (int, float)) or step <= 0):
        raise KitError(f"{where}.step: expected a positive number, and no log scale with it")
    return Dimension(name, "int" if field.type is int else "float", low=low, high=high, log=log, step=step)


def parse_space(value, where: str) -> dict[str, Dimension]:
    """`space:` -> {setting: Dimension}; every name a train: setting, every range non-empty, every choice valid."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KitError(f"{where}: expected a mapping of train: settings to ranges or lists of choices")
    return {str(name): _dimension(str(name), spec, f"{where}.{name}") for name, spec in value.items()}


def parse_folds(value, where: str) -> list[int] | str:
    """[0] (one split), [0, 1, 2, 3, 4] (a cross-validated objective), or 'all'."""
    if value == "all":
        return "all"
    values = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    try:
        folds = [int(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        folds = []
    if not folds or len(folds) != len(values) or len(set(folds)) != len(folds):
        raise KitError(f"{where}: expected a list of distinct fold numbers, or all; got {value!r}")
    return folds


def _check(values: dict, where: str) -> None:
    if values["pruner"] == "threshold" and values["prune_threshold"] is None:
        raise KitError(f"{where}: pruner threshold needs prune_threshold (the value a trial must reach)")
    if values["prune_threshold"] is not None and values["pruner"] != "threshold":
        raise KitError(f"{where}: prune_threshold applies to pruner threshold only (pruner is {values['pruner']})")


TUNE = Table("tune", (
    Field("space", None, None, "The train: settings searched: {setting: {low, high, log}} or {setting: [choices]}.",
          nullable=True, parse=parse_space, cli=False),
    Field("trials", 20, int, "Finished trials (complete or pruned) the study should hold; an interrupted study "
          "resumes and counts the ones it has.", minimum=1),
    Field("folds", [0], None, "Folds each trial validates on; several give a cross-validated objective (the mean of "
          "the folds' best monitored values). e.g. --folds 0,1,2,3,4 or all.", parse=parse_folds),
    Field("timeout", None, int, "Stop starting trials after this many seconds.", nullable=True, minimum=1),
    Field("sampler", "tpe", str, "Optuna sampler: tpe (Tree-structured Parzen Estimator) or random.", SAMPLERS),
    Field("pruner", "median", str, "Stop a trial early: median (behind the median of earlier trials at the same "
          "epoch), threshold (worse than --prune-threshold), none.", PRUNERS),
    Field("startup_trials", 5, int, "Median pruner: trials that run to the end before any is pruned.", minimum=0),
    Field("prune_threshold", None, float, "Threshold pruner: the monitored value a trial must reach at every epoch.",
          nullable=True),
    Field("study", None, str, "Study name (default: the model's run name).", nullable=True),
    Field("storage", "sqlite:///tune.db", str, "Optuna storage: a SQLite file (resumable) or a shared RDB URL such "
          "as postgresql://user@host/db, for processes on several machines."),
    Field("seed", None, int, "Sampler seed (default: none, so that parallel processes sample differently).",
          nullable=True),
), check=_check)
