"""Tracking and tuning benchmarks on a `kit synth` set (CPU, test_resnet).

tensorboard: one `kit train` run (train_fold) whose TensorBoard tracker is timed call by call (the image grid at
the start, the scalars of each epoch, the per-class metric and close at the end), against the epochs' own seconds
in the same run; and, for the wall-clock view, the same run again with the tracker replaced by the no-op one.

tune: a 12-trial `kit tune` (TPE, median pruner) on fold 0 of a 5-fold split, then the best trial's settings and
the default settings trained on all 5 folds: the best trial's fold-0 objective beside its 5-fold mean (how much
tuning on one split overstates), and the best trial's 5-fold mean beside the default's.

Usage: python scripts/bench_tracking.py tensorboard [--epochs 6] [--n-train 200] [--size 64]
       python scripts/bench_tracking.py tune [--trials 12] [--n-train 160] [--size 32] [--epochs 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def setup(root: Path, n_train: int, size: int, k: int):
    from kit.data.folds import make_folds
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset

    write_dataset(root / "data", HPA, n_train=n_train, n_test=16, size=size, seed=3, workers=1)
    data = CompetitionData(root / "data", HPA)
    make_folds(data.train_labels(), HPA, out=root / "folds.csv", k=k, seed=0)
    return data


def base_settings(root: Path, size: int, epochs: int, **extra):
    from kit.settings import resolve_settings

    return resolve_settings({"model": "test_resnet", "size": size, "epochs": epochs, "batch_size": 16,
                             "workers": 0, "tta": "none", "device": "cpu", "progress": False,
                             "folds": str(root / "folds.csv"), "runs": str(root / "runs"), **extra})[0]


def bench_tensorboard(args) -> None:
    import kit.train.loop as loop
    from kit.track.tracker import Tracker
    from kit.train.loop import train_fold

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = setup(root, args.n_train, args.size, 5)
        spent = {"start": 0.0, "epoch": 0.0, "finish": 0.0}
        real_open = loop.open_tracker

        def timed_open(*a, **kw):
            started = time.perf_counter()
            tracker = real_open(*a, **kw)
            spent["start"] += time.perf_counter() - started
            for name in ("epoch", "best", "artifacts", "close"):
                method = getattr(tracker, name)

                def wrapped(*x, _method=method, _name=name, **y):
                    t = time.perf_counter()
                    result = _method(*x, **y)
                    spent["epoch" if _name == "epoch" else "finish"] += time.perf_counter() - t
                    return result
                setattr(tracker, name, wrapped)
            return tracker

        walls = {}
        for label, opener in (("with", timed_open), ("without", lambda *a, **kw: Tracker())):
            loop.open_tracker = opener
            started = time.perf_counter()
            result = train_fold(base_settings(root, args.size, args.epochs, name=label), data, log=lambda _: None)
            walls[label] = time.perf_counter() - started
            if label == "with":
                epoch_seconds = result.history["seconds"].tolist()
        loop.open_tracker = real_open
        epochs = len(epoch_seconds)
        per_epoch = (spent["start"] + spent["epoch"] + spent["finish"]) / epochs
        mean_epoch = statistics.mean(epoch_seconds)
        print(f"{args.n_train} train images at {args.size}px, {epochs} epochs, test_resnet on CPU, batch 16")
        print(f"epoch (train + validate), mean: {mean_epoch:.3f} s")
        print(f"TensorBoard: start (image grid) {spent['start'] * 1000:.1f} ms, epochs {spent['epoch'] * 1000:.1f} ms "
              f"in all, end (per-class, close) {spent['finish'] * 1000:.1f} ms")
        print(f"TensorBoard per epoch (everything spread over the epochs): {per_epoch * 1000:.1f} ms = "
              f"{100 * per_epoch / mean_epoch:.2f}% of an epoch")
        print(f"whole run wall clock: with {walls['with']:.1f} s, without {walls['without']:.1f} s "
              f"(ratio {walls['with'] / walls['without']:.3f}; noisy on a shared machine)")


def bench_tune(args) -> None:
    from kit.settings import TUNE
    from kit.train.loop import train_fold
    from kit.tune.study import tune

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = setup(root, args.n_train, args.size, 5)
        base = base_settings(root, args.size, args.epochs)
        space = {"lr": {"low": 1.0e-4, "high": 3.0e-2, "log": True}, "loss": ["bce", "focal"],
                 "mixup": {"low": 0, "high": 0.4}, "weight_decay": {"low": 1.0e-4, "high": 1.0e-1, "log": True}}
        values = TUNE.resolve({"space": space, "trials": args.trials, "folds": [0], "seed": 0,
                               "storage": f"sqlite:///{root / 'tune.db'}"}, {}, "bench")
        started = time.perf_counter()
        outcome = tune(base, data, values, {}, say=print)
        tuned_minutes = (time.perf_counter() - started) / 60

        def five_fold(settings, name):
            scores = [train_fold(settings.replace(fold=k, name=name), data, log=lambda _: None).best_score
                      for k in range(5)]
            return statistics.mean(scores), scores

        best_mean, best_scores = five_fold(base.replace(**outcome.best_params), "best")
        default_mean, default_scores = five_fold(base, "default")
        print(f"\n{args.n_train} train images at {args.size}px, 5 folds, {args.epochs} epochs, test_resnet, CPU; "
              f"{args.trials} trials on fold 0 in {tuned_minutes:.1f} min ({outcome.pruned} pruned)")
        print(f"best trial {outcome.best_number}: {outcome.best_params}")
        print(f"{'':<28} {'fold 0':>8} {'5-fold mean':>12}   folds")
        print(f"{'default settings':<28} {default_scores[0]:8.4f} {default_mean:12.4f}   "
              + " ".join(f"{s:.4f}" for s in default_scores))
        print(f"{'best trial (tuned on fold 0)':<28} {outcome.best_value:8.4f} {best_mean:12.4f}   "
              + " ".join(f"{s:.4f}" for s in best_scores))
        print(f"fold-0 objective overstates the 5-fold score by {outcome.best_value - best_mean:+.4f}; "
              f"tuning moves the 5-fold score by {best_mean - default_mean:+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="which", required=True)
    tb = sub.add_parser("tensorboard")
    tb.add_argument("--epochs", type=int, default=6)
    tb.add_argument("--n-train", type=int, default=200)
    tb.add_argument("--size", type=int, default=64)
    tu = sub.add_parser("tune")
    tu.add_argument("--trials", type=int, default=12)
    tu.add_argument("--n-train", type=int, default=160)
    tu.add_argument("--size", type=int, default=32)
    tu.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    bench_tensorboard(args) if args.which == "tensorboard" else bench_tune(args)


if __name__ == "__main__":
    main()
