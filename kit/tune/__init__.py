"""`kit tune`: Optuna over `kit train`'s own settings, on one fold or cross-validated over several.

    kit.tune.study     the study (storage, sampler, pruner, direction), the objective, the end report
    kit.tune.parallel  several `kit tune` processes on one study, one per device (--gpus 0,1)
"""
from kit.tune.study import TuneOutcome, tune

__all__ = ["TuneOutcome", "tune"]
