"""Time-budget benchmark: what `--checkpoint-every` costs an epoch, and how close to `--time-limit` a run stops.

1. Checkpoint overhead. `kit train` runs of a few epochs, alternately without and with `--checkpoint-every`
   set to a third of the measured epoch (the share that `--checkpoint-every 10m` is of a 30-minute epoch), in
   the same process. The ratio is the mean training seconds per epoch (history.csv) with checkpoints over
   without. Also the cost of one mid-epoch `last.pt` save, timed directly, for the model benchmarked.
2. Stopping. Runs with `--time-limit` L for several L and more epochs than fit: seconds left = L - the
   command's wall time (from before `train_runs` to its exit with code 75).

Usage: python scripts/bench_budget.py [--model resnet18] [--size 64] [--n-train 300] [--epochs 3]
       [--limits 30,60,120] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def make_data(root: Path, n_train: int, size: int):
    from kit.data.folds import make_folds
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset

    write_dataset(root / "data", HPA, n_train=n_train, n_test=max(8, n_train // 10), size=size, seed=0, workers=1)
    data = CompetitionData(root / "data", HPA)
    make_folds(data.train_labels(), HPA, out=root / "folds.csv", k=3, seed=0)
    return data


def settings_for(args, root: Path, name: str, **extra):
    from kit.settings import resolve_settings

    values = {"model": args.model, "size": args.size, "batch_size": 16, "epochs": args.epochs, "workers": 1,
              "tta": "flip", "device": "cpu", "progress": False, "pretrained": "none", "folds": str(root / "folds.csv"),
              "runs": str(root / "runs"), "name": name, **extra}
    return resolve_settings(options=values)[0]


def train(settings, data) -> tuple[int, float, list[float]]:
    """(exit code, wall seconds, training seconds per epoch) of one `kit train`-equivalent command."""
    import pandas as pd

    from kit.train.budget import TrainingStopped
    from kit.train.loop import train_runs

    started = time.perf_counter()
    code = 0
    try:
        train_runs([settings], data, log=lambda line: None)
    except TrainingStopped:
        code = 75
    wall = time.perf_counter() - started
    history = settings.fold_run.history
    return code, wall, (pd.read_csv(history)["seconds"].tolist() if history.is_file() else [])


def save_cost(settings, data, repeats: int = 5) -> tuple[float, float]:
    """(seconds per mid-epoch last.pt save, its size in MB) for `settings`' model with AdamW and EMA state."""
    import torch

    from kit.train.budget import last_payload
    from kit.train.checkpoint import save_checkpoint
    from kit.train.loop import FoldState, Trainee, param_groups
    from kit.train.models import build_model

    model, _ = build_model(settings, data.spec)
    optimizer = torch.optim.AdamW(param_groups(model, settings))
    model(torch.zeros(2, data.spec.num_channels, settings.size, settings.size)).sum().backward()
    optimizer.step()  # AdamW's moments exist, as in a checkpoint taken mid-training
    trainee = Trainee(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
                      torch.amp.GradScaler("cpu", enabled=False), None, None, None, None)
    path = Path(tempfile.mkdtemp()) / "last.pt"
    meta = {"settings": settings.to_dict(), "spec": data.spec.to_dict(), "epoch": 1}
    partial = {"batches": 10, "total": torch.zeros(()), "count": 160}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        save_checkpoint(path, last_payload(meta, FoldState(), trainee, torch.Generator(), partial))
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], path.stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limits", default="30,60,120")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    data = make_data(root, args.n_train, args.size)
    results = {"model": args.model, "size": args.size, "n_train": args.n_train, "epochs": args.epochs}

    # 1. checkpoint overhead, baseline and checkpointed runs alternating
    _, _, first = train(settings_for(args, root, "warm"), data)
    interval = max(0.5, sum(first) / len(first) / 3)
    plain, checkpointed = [], []
    for repeat in range(args.repeats):
        plain += train(settings_for(args, root, f"plain{repeat}"), data)[2]
        checkpointed += train(settings_for(args, root, f"every{repeat}", checkpoint_every=f"{interval:.2f}s"), data)[2]
    seconds, megabytes = save_cost(settings_for(args, root, "save"), data)
    results["checkpoint"] = {"interval_s": round(interval, 2), "epoch_s_plain": round(sum(plain) / len(plain), 2),
                             "epoch_s_checkpointed": round(sum(checkpointed) / len(checkpointed), 2),
                             "ratio": round(sum(checkpointed) / len(checkpointed) / (sum(plain) / len(plain)), 3),
                             "save_s": round(seconds, 3), "last_pt_mb": round(megabytes, 1)}
    print(json.dumps(results["checkpoint"]), flush=True)

    # 2. how close to the limit a run stops
    results["limits"] = []
    for limit in (float(v) for v in args.limits.split(",")):
        code, wall, _ = train(settings_for(args, root, f"limit{limit:g}", epochs=1000, time_limit=f"{limit:g}s"), data)
        results["limits"].append({"limit_s": limit, "exit": code, "wall_s": round(wall, 2),
                                  "seconds_left": round(limit - wall, 2)})
        print(json.dumps(results["limits"][-1]), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
