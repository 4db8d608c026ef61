"""Loader-only benchmark of the two training paths (`--augment-on`) on the CPU: what the DataLoader workers cost
per image when they augment (today's `workers` path: albumentations, kit's default pipeline, C x H x W collate)
against when they only read (the `batch` path: `RawBatches`, uint8 H x W x C straight from the cache into one
batch array; the augmentation then runs on the GPU and is not timed here).

A `kit synth` set cached at --size px (4 channels); both loaders read the same cache with the same workers and
batch size; epochs alternate (so load from other processes hits both alike) and the median is reported, with
CPU time per image over this process and its workers, which other processes' load disturbs less than wall
time. Images per CPU-second is the throughput of one busy worker core.

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


def cpu_seconds() -> float:
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def epoch(dataset, workers: int, batch_size: int, collate_fn=None) -> tuple[float, float]:
    """(images/s of wall time, CPU ms per image) for one shuffled epoch of `dataset`."""
    from kit.data.loader import make_loader

    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, workers=workers, seed=0, collate_fn=collate_fn)
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
    from kit.data.loader import ImageDataset, RawBatches, batch_as_is
    from kit.data.reading import CompetitionData
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
        loaders = {
            "workers (today: albumentations default)": (
                ImageDataset(store, targets, build_transform(DEFAULT_AUGMENT, seed=0)), None),
            "batch (workers read only)": (RawBatches(store, targets), batch_as_is),
        }
        runs = {name: [] for name in loaders}
        for _ in range(args.epochs):
            for name, (dataset, collate) in loaders.items():
                runs[name].append(epoch(dataset, args.workers, args.batch_size, collate))
    rows = []
    for name, values in runs.items():
        wall, cpu = (statistics.median(v) for v in zip(*values))
        rows.append({"loader": name, "images_per_s": round(wall, 1), "cpu_ms_per_image": round(cpu, 3),
                     "images_per_cpu_s": round(1e3 / cpu, 1)})
    today, batch = rows
    print(f"{len(ids)} images, {HPA.num_channels} channels x {args.size} px from the cache, batch {args.batch_size}, "
          f"{args.workers} workers, {available_cores()} cores; median of {args.epochs} epochs")
    for row in rows:
        print(f"{row['loader']:42s} {row['images_per_s']:8.1f} images/s  {row['cpu_ms_per_image']:6.3f} CPU ms/image"
              f"  {row['images_per_cpu_s']:7.1f} images per CPU-second")
    ratio_cpu = today["cpu_ms_per_image"] / batch["cpu_ms_per_image"]
    ratio_wall = batch["images_per_s"] / today["images_per_s"]
    print(f"read-only path: {ratio_cpu:.1f}x less CPU per image, {ratio_wall:.1f}x the wall-time throughput")
    if args.json:
        args.json.write_text(json.dumps({"loaders": rows, "cpu_ratio": ratio_cpu, "wall_ratio": ratio_wall}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
