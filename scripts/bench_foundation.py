"""Foundation benchmarks: `kit synth` (1,000 samples at 128 px) and `kit folds` at HPA's size (31,072 x 28).

Usage: python scripts/bench_foundation.py
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pandas as pd

from kit.data.folds import assign_folds
from kit.data.spec import HPA, HPA_TRAIN_SIZE
from kit.data.synth import write_dataset


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_dataset(tmp, HPA, n_train=1000, n_test=1, size=128, seed=0)
        synth_seconds = time.perf_counter() - start
    print(f"kit synth: 1,000 train samples at 128 px in {synth_seconds:.1f} s on {cores} cores (target < 30 s)")

    rng = np.random.default_rng(0)
    matrix = rng.random((HPA_TRAIN_SIZE, HPA.num_classes)) < np.array(HPA.frequencies())
    labels = pd.DataFrame({"Id": [str(i) for i in range(HPA_TRAIN_SIZE)], "labels": [list(np.flatnonzero(r)) for r in matrix]})
    start = time.perf_counter()
    folds = assign_folds(labels, HPA.num_classes, k=5, seed=42)
    folds_seconds = time.perf_counter() - start
    per_fold = np.stack([matrix[folds == f].sum(axis=0) for f in range(5)])
    spread = int((per_fold.max(axis=0) - per_fold.min(axis=0)).max())
    print(f"kit folds: {HPA_TRAIN_SIZE:,} rows x {HPA.num_classes} classes in {folds_seconds:.1f} s "
          f"(target < 10 s); largest per-class spread between folds: {spread} sample(s)")


if __name__ == "__main__":
    main()
