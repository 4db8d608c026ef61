"""`kit dups` benchmarks.

1. Speed, at HPA's size with external data: 140,000 samples x 4 channels of 64-bit hashes (random, with
   near copies planted), all pairs within the default distance by `near_pairs` on 2 threads; target under
   2 minutes. Baseline in the same run: one numpy row against all later rows (the obvious vectorisation),
   on the first rows, extrapolated to the whole triangle. Exactness is checked against that baseline on
   a subset, and every planted pair must be found.
2. Quality, which justifies the default distance: a `kit synth --duplicates` set at 128 px, hashed; for
   each distance, the share of injected twins found (recall) and the share of found pairs that are not
   injected twins (false pairs).

Usage: python scripts/bench_dups.py [--skip-speed] [--skip-quality]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit.data.dups import DEFAULT_DISTANCE, hash_store, near_pairs, pixel_store
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.data.synth import write_dataset
from kit.data.synth_dups import add_near_copies

N, CHANNELS, PLANTED = 140_000, 4, 2_000


def planted_hashes(rng: np.random.Generator) -> tuple[np.ndarray, set[tuple[int, int]]]:
    hashes = rng.integers(0, 2**64, size=(N, CHANNELS), dtype=np.uint64)
    planted = set()
    for k in range(PLANTED):
        i, j = 2 * k, N - 1 - 2 * k
        flips = rng.integers(0, 64, size=(CHANNELS, 6)).astype(np.uint64)  # <= 6 bits per channel
        hashes[j] = hashes[i] ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1)
        planted.add((i, j))
    return hashes, planted


def row_baseline(hashes: np.ndarray, rows: int, limit: int) -> tuple[float, set[tuple[int, int]]]:
    found = set()
    start = time.perf_counter()
    for i in range(rows):
        total = np.bitwise_count(hashes[i + 1:] ^ hashes[i]).sum(axis=1)
        found.update((i, i + 1 + int(j)) for j in np.flatnonzero(total <= limit))
    return time.perf_counter() - start, found


def share_of(rows: int) -> float:
    """Row i compares with N - 1 - i later rows: the share of all pairs that the first `rows` rows cover."""
    return sum(N - 1 - r for r in range(rows)) / (N * (N - 1) / 2)


def speed() -> None:
    rng = np.random.default_rng(0)
    hashes, planted = planted_hashes(rng)
    limit = int(DEFAULT_DISTANCE * CHANNELS)
    start, cpu = time.perf_counter(), time.process_time()
    i, j, _ = near_pairs(hashes, DEFAULT_DISTANCE, workers=2)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    found = set(zip(i.tolist(), j.tolist()))
    rows = 400
    base_cpu = time.process_time()
    base_seconds, base_found = row_baseline(hashes, rows, limit)
    base_cpu = (time.process_time() - base_cpu) / share_of(rows)
    base_total = base_seconds / share_of(rows)
    subset = {(a, b) for a, b in found if a < rows}
    print(f"near_pairs, {N} x {CHANNELS} hashes, distance {DEFAULT_DISTANCE:g}, 2 threads: {seconds:.1f} s "
          f"wall, {cpu:.1f} s CPU "
          f"({len(found)} pairs; planted {len(planted)}, found {len(planted & found)})")
    print(f"baseline (one row vs all later rows): {base_seconds:.1f} s for {rows} rows -> {base_total:.0f} s for "
          f"all ({base_total / seconds:.1f}x slower; CPU {base_cpu:.0f} s, {base_cpu / cpu:.1f}x); same pairs on those rows: {subset == base_found}")


def quality() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        start = time.perf_counter()
        write_dataset(root, HPA, n_train=1000, n_test=250, size=128, seed=11)
        twins = add_near_copies(root, HPA, 250, seed=11)
        data = CompetitionData(root, HPA)
        train_ids, test_ids = data.train_labels()["Id"].tolist(), data.test_ids()
        hashes = np.concatenate([hash_store(pixel_store(data, "train", train_ids)),
                                 hash_store(pixel_store(data, "test", test_ids))])
        print(f"quality: kit synth 1000 train + 250 test at 128 px, 250 near copies; hashed in "
              f"{time.perf_counter() - start:.1f} s")
    ids = np.array(train_ids + test_ids)
    truth = {frozenset(pair) for pair in zip(twins["Id"], twins["twin"])}
    i, j, total = near_pairs(hashes, 20.0)
    distance = total / CHANNELS
    is_twin = np.array([frozenset((ids[a], ids[b])) in truth for a, b in zip(i, j)])
    twin_distances = distance[is_twin]
    print(f"twins: {is_twin.sum()} of {len(truth)} within 20; distance median {np.median(twin_distances):.2f}, "
          f"max {twin_distances.max():.2f}; closest unrelated pairs: {np.sort(distance[~is_twin])[:8].tolist()}")
    rows = []
    for d in (4, 6, 7, 8, 9, 10, 12, 14, 16):
        within = distance <= d
        found_twins = int((within & is_twin).sum())
        false = int((within & ~is_twin).sum())
        rows.append({"distance": d, "recall": found_twins / len(truth), "false pairs": false,
                     "false share": false / max(1, int(within.sum()))})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed()
    if not args.skip_quality:
        quality()
