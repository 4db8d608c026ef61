"""Experiment tracking of `kit train`: what a dashboard reads, written beside history.csv.

    kit.track.tracker      the Tracker interface the training loop calls
    kit.track.fold         open_tracker: which trackers a fold gets
    kit.track.tensorboard  TensorBoard event files at runs/<name>/fold<k>/tb/, always
    kit.track.mlflow_store MLflow runs (one per fold, nested under one per model) and `kit blend`'s blend, on request
    kit.track.images       the grid of augmented training images (what the model sees), de-normalised

The loop makes one call per stage: `open_tracker(...)` when the fold starts, `tracker.epoch(row, improved,
optimizer)` after each epoch, `tracker.finish(result, split)` at the end. Only rank 0 writes.
"""
from kit.track.fold import open_tracker
from kit.track.tracker import TRACKS, Tracker, close_open_trackers

__all__ = ["TRACKS", "Tracker", "close_open_trackers", "open_tracker"]
