"""Training benchmark: the kit's training loop against a bare PyTorch loop, and out-of-fold quality on `kit synth`.

throughput: images/s of `kit.train.loop.train_one_epoch` (AdamW with per-group schedules, the multi-label loss
module, the NaN check, the running loss, tqdm) against a bare loop (AdamW, BCE, backward, step) on the same
model, the same in-memory data, batch size and DataLoader, in one run. Epochs of the two alternate, each
starting from the same weights, so load from other processes hits both alike; the median is reported, in
wall-clock time and in this process's CPU time (steadier on a shared machine; one torch thread makes the two
the same measure of work).

quality: `kit train` on every fold of a `kit synth` set (train_fold, as the command runs it), out-of-fold
macro F1 at 0.5 and with per-class thresholds tuned on the OOF predictions, beside the trivial baselines:
all-zero and predict-by-prior (every image gets the class frequencies as scores, thresholds tuned).

Usage: python scripts/bench_train.py throughput [--model resnet18] [--size 64] [--batch-size 32]
       python scripts/bench_train.py quality [--n-train 2000] [--size 64] [--folds 5] [--model test_resnet]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


class MemoryStore:
    """An ImageStore over arrays already in memory, so the loops, not decoding, are measured."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.ids = [str(i) for i in range(len(images))]

    def __len__(self):
        return len(self.images)

    def read(self, index):
        return self.images[index]


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def rates(images: int, started: tuple[float, float]) -> tuple[float, float]:
    """images/s in wall-clock and in CPU time since `started`."""
    now = clock()
    return images / (now[0] - started[0]), images / (now[1] - started[1])


def bare_epoch(model, loader, mean, std) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    model.train()
    started, seen = clock(), 0
    for images, targets in loader:
        x = (images.float() / 255.0 - mean_t) / std_t
        loss = F.binary_cross_entropy_with_logits(model(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(images)
    return rates(seen, started)


def kit_epoch(model, loader, settings, targets, mean, std) -> tuple[float, float]:
    import math

    import torch

    from kit.train.distributed import make_runtime
    from kit.train.loop import make_scheduler, param_groups, train_one_epoch
    from kit.train.losses import make_loss

    runtime = make_runtime("cpu", "auto")
    optimizer = torch.optim.AdamW(param_groups(model, settings), lr=settings.lr)
    scheduler = make_scheduler(optimizer, settings, math.ceil(len(loader)))
    loss_fn = make_loss(settings.loss, targets)
    started = clock()
    train_one_epoch(model, loader, optimizer, scheduler, loss_fn, runtime, runtime.grad_scaler(), mean, std,
                    progress=True, desc="kit loop")
    return rates(len(loader.dataset) // loader.batch_size * loader.batch_size, started)


def throughput(args) -> None:
    import torch

    from kit.data.loader import ImageDataset, make_loader
    from kit.data.spec import HPA
    from kit.settings import resolve_settings
    from kit.train.models import build_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n_images, args.size, args.size, HPA.num_channels), dtype=np.uint8)
    targets = (rng.random((args.n_images, HPA.num_classes)) < 0.1).astype(np.float32)
    (settings,) = resolve_settings({}, {"model": args.model, "pretrained": "none", "lr": 1e-4, "epochs": 1,
                                        "size": args.size, "batch_size": args.batch_size})
    start_model, _ = build_model(settings, HPA)
    start_state = copy.deepcopy(start_model.state_dict())
    dataset = ImageDataset(MemoryStore(images), targets)
    loader = make_loader(dataset, args.batch_size, shuffle=True, workers=0, drop_last=True, seed=0)
    mean, std = [0.5] * HPA.num_channels, [0.25] * HPA.num_channels
    measured = {"bare": [], "kit": []}
    for repeat in range(args.repeats + 1):  # the first round warms up both
        for which in ("bare", "kit") if repeat % 2 == 0 else ("kit", "bare"):
            start_model.load_state_dict(start_state)
            rate = bare_epoch(start_model, loader, mean, std) if which == "bare" else \
                kit_epoch(start_model, loader, settings, targets, mean, std)
            if repeat:
                measured[which].append(rate)
    print(f"model {args.model}, {args.size}px, batch {args.batch_size}, {args.n_images} images in memory, "
          f"torch threads {torch.get_num_threads()}, {args.repeats} epochs each")
    for index, clock_name in enumerate(("wall-clock", "CPU time")):
        bare = statistics.median(r[index] for r in measured["bare"])
        kit = statistics.median(r[index] for r in measured["kit"])
        print(f"{clock_name}: bare {bare:.1f} images/s ({', '.join(f'{r[index]:.1f}' for r in measured['bare'])}); "
              f"kit {kit:.1f} images/s ({', '.join(f'{r[index]:.1f}' for r in measured['kit'])}); "
              f"ratio kit/bare {kit / bare:.3f} (target >= 0.95)")


def quality(args) -> None:
    from kit.data.folds import make_folds
    from kit.data.reading import CompetitionData, labels_to_matrix
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset
    from kit.score.metrics import best_thresholds, macro_f1
    from kit.settings import resolve_settings
    from kit.train.loop import train_fold

    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        root = work / "data"
        data = CompetitionData(root, HPA)
        started = time.perf_counter()
        if not (root / HPA.train_csv).is_file():
            write_dataset(root, HPA, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=0)
        labels = data.train_labels()
        folds_csv = work / "folds.csv"
        make_folds(labels, HPA, out=folds_csv, k=args.folds, seed=0)
        if args.cache:
            from kit.data.cache import build_cache

            build_cache(data, args.size)
        options = {"model": args.model, "pretrained": "none", "size": args.size, "epochs": args.epochs,
                   "batch_size": args.batch_size, "lr": args.lr, "folds": str(folds_csv), "runs": str(work / "runs"),
                   "tta": args.tta, "workers": args.workers, "progress": False, "loss": args.loss}
        (settings,) = resolve_settings({}, options)
        frames = []
        for fold in range(args.folds if args.max_folds is None else min(args.folds, args.max_folds)):
            result = train_fold(settings.replace(fold=fold), data, log=print)
            import pandas as pd

            frames.append(pd.read_csv(result.files["oof"], dtype={"Id": str}))
        import pandas as pd

        oof = pd.concat(frames).set_index("Id")
        truth_of = dict(zip(labels["Id"], labels["labels"]))
        truth = labels_to_matrix([truth_of[i] for i in oof.index], HPA.num_classes)
        probs = oof[list(HPA.classes)].to_numpy()
        prior = np.tile(labels_to_matrix(labels["labels"].tolist(), HPA.num_classes).mean(axis=0), (len(truth), 1))
        elapsed = time.perf_counter() - started
    print(f"\n{args.n_train} train images at {args.size}px, {len(frames)} of {args.folds} folds ({len(oof)} OOF rows), "
          f"{args.model}, {args.epochs} epochs, TTA {args.tta}, {elapsed / 60:.1f} min")
    print(f"OOF macro F1, tuned thresholds: {best_thresholds(truth, probs)[1].mean():.4f}")
    print(f"OOF macro F1 at 0.5:            {macro_f1(truth, probs):.4f}")
    print(f"baseline all-zero:              {macro_f1(truth, np.zeros_like(probs)):.4f}")
    print(f"baseline prior, tuned:          {best_thresholds(truth, prior)[1].mean():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["throughput", "quality"])
    parser.add_argument("--model", default=None, help="default: resnet18 (throughput), test_resnet (quality)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--n-images", type=int, default=320, help="throughput: images per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="throughput: epochs per loop")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=None, help="quality: train only the first N folds")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--loss", default="bce")
    parser.add_argument("--tta", default="d4")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", action="store_true", help="quality: build `kit cache` first")
    parser.add_argument("--dir", type=Path, default=None, help="quality: keep data and runs here")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.part == "throughput":
        args.model = args.model or "resnet18"
        throughput(args)
    else:
        args.model = args.model or "test_resnet"
        quality(args)


if __name__ == "__main__":
    main()
