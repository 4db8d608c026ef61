"""`kit train` end to end, as a user runs it, against the physical limit: the same training loop on batches
already on the GPU; and TTA prediction (`kit infer`'s path) against a bare forward loop over the same views.

On a `kit synth` set cached at --size px (4 channels), one run of `kit train` (the CLI, in its own process) for
each of: today's `--augment-on workers` path with 2 workers; the `batch` path with 2 and with 8 reader threads
(`--workers`: threads read the cache into a ring of pinned buffers, the GPU augments); the `batch` path with `--cache-device gpu`. Each run's training throughput is
its last epoch's training images over that epoch's seconds (history.csv; the seconds include validating 1/8 of
the set, which costs about a tenth of training it); the first epoch (cuDNN autotuning, worker start-up) is left
out. The limit is `kit.train.loop.train_one_epoch` on uint8 batches held on the GPU, normalised there: no loader,
no augmentation. The ratio to it is the share of the GPU that `kit train` keeps busy.

Prediction: `kit.infer.stream.predict_models` (what `kit infer` runs: decode, resize, d4 TTA views made on the
GPU in one batch) on the test images against a bare loop: for each batch already on the GPU, 8 views, 8 forward
passes. The model is resnet34 with random weights (nothing is downloaded).

Usage: python scripts/bench_end_to_end.py [--model resnet34] [--size 512] [--n-train 1024] [--epochs 3]
                                          [--json FILE]
       python scripts/bench_end_to_end.py --cpu-smoke   # test_resnet at 32 px on the CPU: checks the script only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def kit(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "kit", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"kit {' '.join(args)}: exit {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


def train_rate(work: Path, name: str, options: list[str], train_images: int, first_line: dict) -> float:
    out = kit("train", "--data", "data", "--runs", "runs", "--name", name, "--no-progress", *options, cwd=work)
    first_line[name] = out.splitlines()[0]
    import pandas as pd

    history = pd.read_csv(work / "runs" / name / "fold0" / "history.csv")
    return train_images / float(history["seconds"].iloc[-1])


def limit_rate(args, work: Path, train_images: int) -> float:
    """train_one_epoch on batches held on the device (the same model, precision and batch size)."""
    import torch

    from kit.data.cache import open_store
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.settings import resolve_settings
    from kit.train.distributed import make_runtime
    from kit.train.loop import make_scheduler, param_groups, train_one_epoch
    from kit.train.losses import make_loss
    from kit.train.models import build_model

    settings = resolve_settings(options={"model": args.model, "pretrained": "none", "size": args.size,
                                         "batch_size": args.batch_size, "device": args.device})[0]
    data = CompetitionData(work / "data", HPA)
    store = open_store(data, "train", args.size)
    runtime = make_runtime(args.device, "auto")
    images = torch.from_numpy(np.stack([store.read(i) for i in range(min(len(store), 8 * args.batch_size))]))
    images = images.permute(0, 3, 1, 2).contiguous().to(runtime.device)
    steps = train_images // args.batch_size
    batches = [(images[(s * args.batch_size) % len(images):][:args.batch_size],
                torch.zeros(args.batch_size, HPA.num_classes, device=runtime.device)) for s in range(steps)]
    batches = [b for b in batches if len(b[0]) == args.batch_size]
    model, _ = build_model(settings, HPA)
    model = runtime.prepare(model)
    optimizer = torch.optim.AdamW(param_groups(model, settings), lr=1e-4)
    scheduler = make_scheduler(optimizer, settings, 10_000)
    loss_fn = make_loss(settings.loss, np.zeros((4, HPA.num_classes))).to(runtime.device)
    mean, std = [0.1] * 4, [0.2] * 4
    rates = []
    for _ in range(2):  # the first pass autotunes cuDNN
        start = sync_time(runtime.device)
        train_one_epoch(model, batches, optimizer, scheduler, loss_fn, runtime, runtime.grad_scaler(), mean, std,
                        progress=False)
        rates.append(len(batches) * args.batch_size / (sync_time(runtime.device) - start))
    return rates[-1]


def sync_time(device) -> float:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def predict_rates(args, work: Path) -> tuple[float, float]:
    """(kit infer's predict_models with d4 TTA, a bare 8-forward loop over batches on the GPU) in images/s."""
    import torch

    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.infer.stream import FoldModel, predict_models
    from kit.settings import resolve_settings
    from kit.train.distributed import make_runtime
    from kit.train.models import build_model
    from kit.train.tta import apply_view, views

    settings = resolve_settings(options={"model": args.model, "pretrained": "none", "size": args.size})[0]
    data = CompetitionData(work / "data", HPA)
    ids = data.test_ids()
    runtime = make_runtime(args.device, "auto")
    model, _ = build_model(settings, HPA)
    model = runtime.prepare(model).eval()
    mean, std = [0.1] * 4, [0.2] * 4
    fold_model = FoldModel(0, 0, model, args.size, args.batch_size, mean, std, "d4", runtime)
    predict_models([fold_model], data, ids[:args.batch_size], workers=args.workers_max, log=lambda line: None)
    start = sync_time(runtime.device)
    predict_models([fold_model], data, ids, workers=args.workers_max, log=lambda line: None)
    kit_rate = len(ids) / (sync_time(runtime.device) - start)

    images = torch.randint(0, 256, (args.batch_size, 4, args.size, args.size), dtype=torch.uint8, device=runtime.device)
    mean_t = torch.tensor(mean, device=runtime.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=runtime.device).view(1, -1, 1, 1)
    batches = max(1, len(ids) // args.batch_size)
    with torch.inference_mode():
        for _repeat in range(2):  # the first pass autotunes cuDNN
            start = sync_time(runtime.device)
            for _ in range(batches):
                x = ((images.float() / 255 - mean_t) / std_t).contiguous(
                    memory_format=torch.channels_last if runtime.channels_last else torch.contiguous_format)
                with runtime.autocast():
                    total = sum(torch.sigmoid(model(apply_view(x, t, f)).float()) for t, f in views("d4"))
                total.sum().item()
            bare_rate = batches * args.batch_size / (sync_time(runtime.device) - start)
    return kit_rate, bare_rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet34")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers-max", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        args.model, args.size, args.n_train, args.n_test, args.batch_size = "test_resnet", 32, 64, 16, 8
        args.epochs, args.device, args.workers_max = 2, "cpu", 1

    from kit.data.spec import HPA
    from kit.data.synth import write_dataset
    from kit.system import available_cores

    k = 8
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        write_dataset(work / "data", HPA, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=0,
                      workers=min(8, available_cores()))
        kit("cache", "--data", "data", "--size", str(args.size), cwd=work)
        kit("folds", "--data", "data", "--k", str(k), cwd=work)
        import pandas as pd

        folds = pd.read_csv(work / "folds" / "folds.csv")
        train_images = int((folds["fold"] != 0).sum()) // args.batch_size * args.batch_size  # drop_last
        prepared = time.perf_counter() - started
        common = ["--model", args.model, "--pretrained", "none", "--size", str(args.size), "--epochs",
                  str(args.epochs), "--batch-size", str(args.batch_size), "--tta", "none", "--device", args.device,
                  "--fold", "0"]
        runs = {
            "kit train, workers path (today), 2 workers": ["--augment-on", "workers", "--workers", "2"],
            "kit train, batch path, 2 threads": ["--augment-on", "batch", "--workers", "2", "--cache-device", "cpu"],
            f"kit train, batch path, {args.workers_max} threads": ["--augment-on", "batch", "--workers",
                                                                   str(args.workers_max), "--cache-device", "cpu"],
            "kit train, batch path, images on the GPU": ["--augment-on", "batch", "--workers", "2",
                                                         "--cache-device", "gpu"],
        }
        limit = limit_rate(args, work, train_images)
        rows, first_lines = [], {}
        for index, (name, options) in enumerate(runs.items()):
            rate = train_rate(work, f"run{index}", [*common, *options], train_images, first_lines)
            rows.append({"run": name, "images_per_s": round(rate, 1), "vs_limit": round(rate / limit, 3)})
        rows.append({"run": "limit: train_one_epoch on batches on the GPU", "images_per_s": round(limit, 1),
                     "vs_limit": 1.0})
        kit_predict, bare_predict = predict_rates(args, work)
    predictions = [{"run": "kit infer path, d4 TTA (decode + views on the GPU)", "images_per_s": round(kit_predict, 1),
                    "vs_bare": round(kit_predict / bare_predict, 3)},
                   {"run": "bare loop, 8 views, 8 forward passes, batches on the GPU",
                    "images_per_s": round(bare_predict, 1), "vs_bare": 1.0}]
    print(f"{args.model} {args.size}px, batch {args.batch_size}, {args.n_train} train images ({train_images} in the "
          f"training fold), {args.epochs} epochs (last one timed), {available_cores()} cores; data ready in "
          f"{prepared:.0f}s")
    for row in rows:
        print(f"{row['run']:52s} {row['images_per_s']:8.1f} images/s  {row['vs_limit']:5.2f} of the limit")
    for row in predictions:
        print(f"{row['run']:52s} {row['images_per_s']:8.1f} images/s  {row['vs_bare']:5.2f} of the bare loop")
    for name, line in zip(runs, first_lines.values()):
        print(f"  {name}: augment{line.rsplit('; augment', 1)[-1]}")
    if args.json:
        args.json.write_text(json.dumps({"train": rows, "predict": predictions}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
