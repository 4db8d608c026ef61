"""Training one fold: models, losses, the loop, checkpoints, devices and DDP, fan-out, predictions and TTA.

Nothing here is imported eagerly: `kit.train.fanout` must load torch only after choosing its GPU, so each name
below loads its module on first use.

    from kit.train import train_fold          # one model on one fold (kit.train.loop)
    from kit.train import predict_run         # a saved run's predictions again (kit.train.predict)
    from kit.train import find_lr             # the learning-rate range test (kit.train.lr_find)
"""
from kit.exports import lazy_exports

EXPORTS = {
    "Classifier": "models", "build_model": "models", "check_model_name": "models", "create_model": "models",
    "make_loss": "losses", "BatchMixer": "mixing", "WeightAverage": "swa",
    "find_lr": "lr_find", "LrFindResult": "lr_find",
    "FoldResult": "loop", "FoldState": "loop", "history_columns": "loop", "train_fold": "loop",
    "train_runs": "loop",
    "init_weights": "init",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "Runtime": "device", "make_runtime": "distributed",
    "fan_out": "fanout",
    "load_run": "predict", "predict_run": "predict", "predict_store": "predict",
    "VIEWS": "tta", "tta_probabilities": "tta",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
