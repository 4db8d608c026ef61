"""DICOM benchmark: reading a 512 x 512 CT slice through 3 HU windows into `kit cache`, against bare
`pydicom.dcmread` + numpy doing the same windowing.

A `kit synth --preset rsna-ich-2019`-style set of N slices at 512 px (half stored signed, half unsigned, written
with pydicom) is read, on one core, three ways, alternating over several rounds (so load from other processes
hits all alike); the median is reported as images per second and the CPU time per image:
- `pydicom + numpy`: dcmread, pixel_array, slope/intercept to HU, three windows clipped to uint8 (the baseline);
- `kit decode`: `DecodingStore.read` of the rsna-ich-2019 spec (kit.data.dicom: the same work, plus the checks);
- `kit cache`: `build_cache` of the train split at 512 px with one worker (decode + write into the cache's
  memory-mapped file, signatures and manifest), from scratch each round.

Usage: python scripts/bench_dicom.py [--n 200] [--rounds 5]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

WINDOWS = ((40.0, 80.0), (80.0, 200.0), (40.0, 380.0))


def bare(paths) -> None:
    """What a Kaggler writes without kit: read, rescale to HU, window, stack."""
    import pydicom

    for path in paths:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.float32) * np.float32(ds.RescaleSlope) + np.float32(ds.RescaleIntercept)
        np.stack([np.clip((hu - (c - w / 2)) * (255.0 / w), 0, 255).astype(np.uint8) for c, w in WINDOWS], -1)


def timed(work) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from kit.data.cache import build_cache
    from kit.data.images import DecodingStore
    from kit.data.presets import get_preset
    from kit.data.reading import CompetitionData
    from kit.data.synth_probability import write_probability_preset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_probability_preset(root, "rsna-ich-2019", n_train=args.n, n_test=1, size=512, workers=1)
        data = CompetitionData(root, get_preset("rsna-ich-2019").spec())
        ids = data.train_labels()["Id"].tolist()
        paths = [data.train_source.file_path(i) for i in ids]
        store = DecodingStore(ids, data.train_sources(), data.spec)
        assert store.read(0).shape == (512, 512, 3)
        bare(paths[:5])  # imports and the page cache, for every reader alike

        def kit_decode():
            for row in range(len(store)):
                store.read(row)

        def kit_cache():
            out = Path(tmp) / "cache"
            shutil.rmtree(out, ignore_errors=True)
            build_cache(data, 512, out=out, workers=1, splits=("train",))

        readers = {"pydicom + numpy": lambda: bare(paths), "kit decode": kit_decode, "kit cache": kit_cache}
        results = {name: [] for name in readers}
        for _ in range(args.rounds):
            for name, work in readers.items():
                results[name].append(timed(work))
    base = statistics.median(wall for wall, _ in results["pydicom + numpy"])
    print(f"{args.n} slices of 512 x 512, 3 windows, one core, median of {args.rounds} rounds")
    print(f"{'reader':<18}{'images/s':>10}{'CPU ms/image':>14}{'time vs baseline':>18}")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<18}{args.n / wall:>10.1f}{1000 * cpu / args.n:>14.2f}{wall / base:>17.2f}x")


if __name__ == "__main__":
    main()
