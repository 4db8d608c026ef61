"""Which trackers a fold gets: TensorBoard always, MLflow with `--track mlflow`, none on ranks other than 0."""
from __future__ import annotations

from kit.track.tracker import Tracker, Trackers


def open_tracker(settings, run, data, runtime, loaders=None, trainee=None, resumed: bool = False,
                 epochs_done: int = 0) -> Tracker:
    """The trackers of one fold: TensorBoard always, MLflow with `settings.track == 'mlflow'`; nothing on ranks
    other than 0. Logs the augmented image grid now when the fold starts from its first epoch."""
    if not runtime.is_main:
        return Tracker()
    from kit.track.tensorboard import TensorBoardTracker

    metric = data.spec.scorer
    trackers: list[Tracker] = [TensorBoardTracker(run.dir, metric, purge_after=epochs_done if resumed else None)]
    if getattr(settings, "track", "none") == "mlflow":
        from kit.track.mlflow_store import MlflowTracker

        trackers.append(MlflowTracker(settings, run, data, resumed))
    tracker = Trackers(trackers, metric, data.spec.classes)
    if not resumed and loaders is not None:
        tracker.start(loaders, trainee, settings)
    return tracker
