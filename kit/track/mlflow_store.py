"""MLflow tracking (`--track mlflow`): each fold one MLflow run nested under one parent run per model, and
`kit blend`'s blend one run of its own.

A fold's run holds the resolved settings as parameters (each `train:` setting under its own name: strings as they
are, every other value as JSON), history.csv's columns as metrics per epoch (step = epoch), and config.yaml,
history.csv and curves.png as artifacts. The store is $MLFLOW_TRACKING_URI, else `sqlite:///mlruns.db` in the
working folder (a real database that `mlflow ui --backend-store-uri sqlite:///mlruns.db` reads); nothing goes to
the network. mlflow is imported only here, and only when tracking is asked for (its import takes seconds).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from kit.track.tracker import Tracker, learning_rates

DEFAULT_DB = "mlruns.db"  # in the working folder
PARENT_TAG, FOLD_TAG = "kit.model_dir", "kit.fold_dir"
BATCH = 100  # MLflow takes at most 1000 metrics / 100 params per log_batch call


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the working folder's mlruns.db by its absolute path: MLflow keeps one store per
    URI string for the process, so a relative one would stay bound to the folder it was first opened in."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def client():
    import logging

    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        from kit.errors import KitError

        raise KitError("--track mlflow needs the mlflow package: pip install 'kit[mlflow]'") from None

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the SQLite store's schema migrations, once per file
    return MlflowClient(tracking_uri())


def experiment_id(mlflow_client, name: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name)
    except Exception:  # another process created it meanwhile
        return mlflow_client.get_experiment_by_name(name).experiment_id


def param_value(value) -> str:
    """How a setting reads as an MLflow parameter: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def find_run(mlflow_client, experiment: str, tag: str, value: str):
    quoted = value.replace("'", "\\'")
    runs = mlflow_client.search_runs([experiment], f"tags.`{tag}` = '{quoted}'", max_results=1,
                                     order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def _log_params(mlflow_client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), BATCH):
        mlflow_client.log_batch(run_id, params=items[i:i + BATCH])


def _log_metrics(mlflow_client, run_id: str, values: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlflow_client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])


class MlflowTracker(Tracker):
    """One fold's MLflow run, under its model's parent run (both found again on --resume)."""

    def __init__(self, settings, run, data, resumed: bool):
        self.client = client()
        experiment = experiment_id(self.client, experiment_name(data.spec))
        model_dir = str(Path(run.dir).resolve().parent)
        parent = find_run(self.client, experiment, PARENT_TAG, model_dir)
        if parent is None:
            parent = self.client.create_run(experiment, run_name=settings.run_name,
                                            tags={PARENT_TAG: model_dir, "kit.model": settings.model})
        else:
            self.client.update_run(parent.info.run_id, status="RUNNING")
        self.parent_id = parent.info.run_id
        fold_dir = str(Path(run.dir).resolve())
        found = find_run(self.client, experiment, FOLD_TAG, fold_dir) if resumed else None
        if found is not None:
            self.run_id = found.info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(
                experiment, run_name=f"{settings.run_name}/fold{settings.fold}",
                tags={"mlflow.parentRunId": self.parent_id, FOLD_TAG: fold_dir, "kit.fold": str(settings.fold),
                      "kit.model": settings.model, "kit.data": str(data.root)}).info.run_id
            _log_params(self.client, self.run_id, {k: param_value(v) for k, v in settings.to_dict().items()})

    def epoch(self, row: dict, improved: bool, optimizer=None) -> None:
        values = {k: v for k, v in row.items() if k != "epoch"}
        values.update({f"lr_{role}": lr for role, lr in learning_rates(optimizer).items()})
        _log_metrics(self.client, self.run_id, values, int(row["epoch"]))

    def best(self, epoch, per_class, class_names) -> None:
        values = {f"best_per_class_{kind}/{name}": v for kind, row in per_class.items()
                  for name, v in zip(class_names, row)}
        safe = {"".join(c if c.isalnum() or c in "_-./ " else "_" for c in k): v for k, v in values.items()}
        _log_metrics(self.client, self.run_id, safe, epoch)

    def artifacts(self, run_dir) -> None:
        from kit.layout import FoldRun
        from kit.report import plot_learning_curves

        run = FoldRun(Path(run_dir))
        if run.history.is_file():
            plot_learning_curves(run.dir)
        for path in (run.config, run.history, run.curves):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))

    def close(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)
            self.client.set_terminated(self.parent_id, status)
            self.run_id = None


def experiment_name(spec) -> str:
    """Runs of one competition share an experiment, named after its slug."""
    return f"kit {spec.slug}"


def log_blend(result, spec, values: dict, json_path) -> str:
    """`kit blend`'s blend as an MLflow run: its settings (params), its scores at 0.5, tuned and cross-validated
    and every member's (metrics), the member list (a tag) and the JSON, CSV and PNG (artifacts). Returns the run id."""
    mlflow_client = client()
    experiment = experiment_id(mlflow_client, experiment_name(spec))
    run_id = mlflow_client.create_run(experiment, run_name=f"blend {values['name']}",
                                      tags={"kit.kind": "blend", "kit.blend_json": str(Path(json_path).resolve()),
                                            "kit.members": ", ".join(result.members)}).info.run_id
    _log_params(mlflow_client, run_id, {k: param_value(v if not isinstance(v, Path) else str(v))
                                        for k, v in values.items()} | {"members": json.dumps(result.members)})
    scores = {f"blend_{flavour}": value for flavour, value in result.scores.overall.items()}
    for member, member_scores in result.member_scores.items():
        safe = "".join(c if c.isalnum() or c in "_-./ " else "_" for c in member)
        scores.update({f"member/{safe}/{flavour}": v for flavour, v in member_scores.overall.items()})
    _log_metrics(mlflow_client, run_id, scores, 0)
    for path in result.files.values():
        if Path(path).is_file():
            mlflow_client.log_artifact(run_id, str(path))
    mlflow_client.set_terminated(run_id, "FINISHED")
    return run_id
