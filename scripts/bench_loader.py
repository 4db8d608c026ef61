"""Loader benchmark: one epoch (read + augment + collate) decoding PNGs each time vs reading `kit cache`.

A `kit synth` set at 512 px; both loaders produce 256 px uint8 batches through the same albumentations
pipeline on uint8 with the same number of DataLoader workers, in one run. Worker start-up is part of each
epoch, as in training. Epochs of the two loaders alternate (so load from other processes hits both alike)
and the median is reported, with the CPU time per image (this process + its workers), which load from
other processes disturbs less than wall time. Files are in the page cache for both (just written).

Three pipelines: `flips` (flips + brightness/contrast: OpenCV-backed, cheap), `d4` (albumentations' D4,
whose 90-degree rotations and transposes become numpy strided copies of ~0.4 ms per 256 px 4-channel image,
the same order as reading the sample from the cache), and `kit` (`kit train`'s default: flips, 90-degree
rotations, affine, brightness/contrast).

Usage: python scripts/bench_loader.py [--n-train 500] [--size 512] [--cache-size 256] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def epoch_rate(store, transform, workers: int, batch_size: int) -> tuple[float, float]:
    """(images/s of wall time, CPU ms per image over this process and its workers) for one epoch."""
    import resource

    from kit.data.loader import ImageDataset, make_loader

    def cpu() -> float:
        return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))

    dataset = ImageDataset(store, targets=np.zeros((len(store), 28), np.float32), transform=transform)
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, workers=workers, seed=0)
    start, cpu_start = time.perf_counter(), cpu()
    seen = sum(len(images) for images, _ in loader)
    del loader  # the workers exit (and are reaped) with the epoch, so their CPU time is counted
    return seen / (time.perf_counter() - start), (cpu() - cpu_start) / seen * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--size", type=int, default=512, help="side of the synthetic PNGs")
    parser.add_argument("--cache-size", type=int, default=256, help="side of the images the loaders produce")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loader; the median is reported")
    parser.add_argument("--dir", type=Path, default=None, help="keep the data set here (default: a temp folder)")
    args = parser.parse_args()

    import albumentations as A

    from kit.data.augment import build_transform
    from kit.data.cache import build_cache, find_cache
    from kit.data.reading import CompetitionData, DecodingStore
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset
    from kit.settings import DEFAULT_AUGMENT
    from kit.system import available_cores

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp) / "data"
        data = CompetitionData(root, HPA)
        if not (root / HPA.train_csv).is_file():
            write_dataset(root, HPA, n_train=args.n_train, n_test=8, size=args.size, seed=0)
        ids = data.train_labels()["Id"].tolist()
        start = time.perf_counter()
        report = build_cache(data, args.cache_size, out=root / "cache", workers=args.workers, splits=["train"])[0]
        build_rate = report.decoded / (time.perf_counter() - start)

        pipelines = {
            "flips": A.Compose([A.RandomBrightnessContrast(p=0.5), A.HorizontalFlip(), A.VerticalFlip()]),
            "d4": A.Compose([A.RandomBrightnessContrast(p=0.5), A.D4()]),
            "kit": build_transform(DEFAULT_AUGMENT, seed=0),  # what `kit train` uses unless told otherwise
        }
        decoding = DecodingStore(ids, data.train_sources(), HPA, args.cache_size)
        cached = find_cache(data, "train", args.cache_size, ids)
        assert cached is not None, "the cache was just built"
        rates = {}
        for name, transform in pipelines.items():
            runs = {"decode": [], "cache": []}
            for _ in range(args.epochs):
                for loader_name, store in (("decode", decoding), ("cache", cached)):
                    runs[loader_name].append(epoch_rate(store, transform, args.workers, args.batch_size))
            rates[name] = {key: [statistics.median(values) for values in zip(*r)] for key, r in runs.items()}

    cores = available_cores() if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{len(ids)} samples, {HPA.num_channels} x {args.size} px PNGs -> {args.cache_size} px, batch "
          f"{args.batch_size}, {args.workers} workers, {cores} cores; median of {args.epochs} epochs")
    print(f"kit cache build: {report.decoded} samples decoded, {build_rate:.1f} samples/s")
    for name, pair in rates.items():
        (decode, decode_cpu), (cache, cache_cpu) = pair["decode"], pair["cache"]
        print(f"augment {name:5s} | images/s: decoding PNGs {decode:6.1f}, cache {cache:6.1f}, ratio {cache / decode:5.1f}x "
              f"| CPU ms/image: decoding {decode_cpu:5.2f}, cache {cache_cpu:5.2f}, ratio {decode_cpu / cache_cpu:5.1f}x")

if __name__ == "__main__":
    main()
