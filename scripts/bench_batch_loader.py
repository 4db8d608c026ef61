"""Loader-only benchmark of the two training paths (`--augment-on`) on the CPU: what reading and augmenting cost per
image when DataLoader workers augment (today's `workers` path: albumentations, kit's default pipeline, C x H x W
collate) against when nothing but reading happens off the device (the `batch` path; its augmentation then runs on
the GPU and is not timed here). The batch path is timed both ways it reads:
- a cache, as training reads one: reader threads fill a ring of reused batch buffers (`kit.data.ring.RingLoader`);
- DataLoader worker processes (`RawBatches`), the way it reads images decoded from their files, here from the
  same cache: each batch crosses from a worker in a fresh shared-memory block.

A `kit synth` set cached at --size px (4 channels); every loader reads the same cache with the same --workers
(processes or threads) and batch size; epochs alternate (so load from other processes hits all alike) and the
median is reported, with CPU time per image over this process and its workers, which other processes' load
disturbs less than wall time. Images per CPU-second is the throughput of one busy core.

Usage: python scripts/bench_batch_loader.py [--n-train 200] [--size 512] [--workers 2] [--epochs 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def cpu_seconds() -> float:
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def epoch(make) -> tuple[float, float]:
    """(images/s of wall time, CPU ms per image) for one shuffled epoch of the loader `make()` returns."""
    loader = make()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    seen = sum(len(images) for images, _ in loader)
    del loader  # the workers exit (and are reaped) with the epoch, so their CPU time is counted
    return seen / (time.perf_counter() - start), (cpu_seconds() - cpu_start) / seen * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from kit.data.augment import build_transform
    from kit.data.cache import build_cache, find_cache
    from kit.data.loader import ImageDataset, RawBatches, batch_as_is, make_loader
    from kit.data.reading import CompetitionData
    from kit.data.ring import RingLoader, batch_order
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset
    from kit.settings import DEFAULT_AUGMENT
    from kit.system import available_cores

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root, HPA, n_train=args.n_train, n_test=4, size=args.size, seed=0, workers=args.workers)
        data = CompetitionData(root, HPA)
        ids = data.train_labels()["Id"].tolist()
        build_cache(data, args.size, out=root / "cache", workers=args.workers, splits=["train"])
        store = find_cache(data, "train", args.size, ids)
        assert store is not None, "the cache was just built"
        targets = np.zeros((len(store), HPA.num_classes), np.float32)
        transform = build_transform(DEFAULT_AUGMENT, seed=0)
        loaders = {
            "workers (today: albumentations default)": lambda: make_loader(
                ImageDataset(store, targets, transform), args.batch_size, shuffle=True, workers=args.workers, seed=0),
            "batch, reader threads (a cache)": lambda: RingLoader(
                store, targets, batch_order(len(store), args.batch_size, torch.Generator().manual_seed(0)),
                threads=args.workers),
            "batch, worker processes (decoded files)": lambda: make_loader(
                RawBatches(store, targets), args.batch_size, shuffle=True, workers=args.workers, seed=0,
                collate_fn=batch_as_is),
        }
        runs = {name: [] for name in loaders}
        for _ in range(args.epochs):
            for name, make in loaders.items():
                runs[name].append(epoch(make))
    rows = []
    for name, values in runs.items():
        wall, cpu = (statistics.median(v) for v in zip(*values))
        rows.append({"loader": name, "images_per_s": round(wall, 1), "cpu_ms_per_image": round(cpu, 3),
                     "images_per_cpu_s": round(1e3 / cpu, 1)})
    today, batch, processes = rows
    print(f"{len(ids)} images, {HPA.num_channels} channels x {args.size} px from the cache, batch {args.batch_size}, "
          f"{args.workers} workers, {available_cores()} cores; median of {args.epochs} epochs")
    for row in rows:
        print(f"{row['loader']:42s} {row['images_per_s']:8.1f} images/s  {row['cpu_ms_per_image']:6.3f} CPU ms/image"
              f"  {row['images_per_cpu_s']:7.1f} images per CPU-second")
    ratio_cpu = today["cpu_ms_per_image"] / batch["cpu_ms_per_image"]
    ratio_wall = batch["images_per_s"] / today["images_per_s"]
    ratio_processes = today["cpu_ms_per_image"] / processes["cpu_ms_per_image"]
    print(f"batch path from a cache: {ratio_cpu:.1f}x less CPU per image, {ratio_wall:.1f}x the wall-time throughput"
          f" (worker processes: {ratio_processes:.1f}x less CPU)")
    if args.json:
        args.json.write_text(json.dumps({"loaders": rows, "cpu_ratio": ratio_cpu, "wall_ratio": ratio_wall,
                                         "processes_cpu_ratio": ratio_processes}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
