"""`kit dups`: near-duplicate images across train, external and test, by perceptual hash.

Hashes: the `imagehash` library's pHash (64 bits: the signs of the 8 x 8 lowest frequencies of the DCT of a
32 x 32 grey image) of every channel on its own, so a sample of C channels has C hashes. Combined distance
of two samples: the mean over channels of the per-channel Hamming distances, on the 0..64 scale of one hash
(a pair is a duplicate at distance D when the channel distances add up to at most D * C). The mean rather
than the minimum because one channel alone (a faint protein stain, an empty yellow plane) matches many
unrelated images; rather than the maximum because one re-encoded channel should not hide a copy.

DEFAULT_DISTANCE (measured in BENCHMARKS.md by `scripts/bench_dups.py`): on `kit synth --duplicates` sets,
near copies (JPEG re-encoded, shifted by up to 1% and rescaled by up to 2%, brightness changed) lie at mean
distances of 0-6, while unrelated pairs lie at 9.5 and above (99.99% of them above 14, median 31); 8 sits in
that gap. HPA's winners used about 12 of 64 bits on real images: raise --distance there if the label
agreement that `kit dups` prints for train twins stays high.

Pixels come from the resized cache when a fresh one of at least 32 px exists (pHash shrinks to 32 x 32
anyway), else from the image files.

Pairs: all pairs within D, by brute force over bit-packed hashes (XOR + popcount in numpy tiles, on all
cores): exact, and ~25 s for HPA with external data (140,000 samples x 4 channels) on 2 cores.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit import io, layout
from kit.data.cache import cache_roots, lookup_cache, split_sources
from kit.data.reading import CompetitionData, DecodingStore, ImageStore, labels_to_matrix, read_labels
from kit.errors import KitError
from kit.system import available_cores

DEFAULT_DISTANCE = 8.0
HASH_BITS = 64
MIN_CACHE_SIZE = 32  # pHash works on a 32 x 32 image
PAIR_COLUMNS = ["Id1", "Id2", "split1", "split2", "distance", "labels_agree"]
ROW_TILE, COLUMN_TILE = 32, 4096  # tiles of 32 x 4096 pairs: the temporaries stay in the CPU caches


# ---------------------------------------------------------------- hashing


def hash_image(image: np.ndarray) -> np.ndarray:
    """H x W x C uint8 -> C uint64: imagehash's pHash of each channel, its 64 bits packed row-major."""
    import imagehash
    from PIL import Image

    bits = [imagehash.phash(Image.fromarray(np.ascontiguousarray(image[..., c]))).hash.reshape(-1)
            for c in range(image.shape[2])]
    return np.packbits(np.stack(bits), axis=1).view(">u8").astype(np.uint64).reshape(-1)


_STORE: ImageStore | None = None


def _init_hasher(store: ImageStore) -> None:
    global _STORE
    _STORE = store


def _hash_rows(rows: Sequence[int]) -> np.ndarray:
    return np.stack([hash_image(_STORE.read(int(row))) for row in rows])


def hash_store(store: ImageStore, workers: int | None = None, progress: bool = False) -> np.ndarray:
    """N x C uint64 hashes of every sample of `store`, decoded on `workers` processes (default: all cores)."""
    count = len(store)
    if count == 0:
        return np.zeros((0, 0), dtype=np.uint64)
    workers = workers or available_cores()
    chunks = [range(start, min(start + 256, count)) for start in range(0, count, 256)]
    if workers <= 1 or count < 512:
        _init_hasher(store)
        results = map(_hash_rows, chunks)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, initializer=_init_hasher, initargs=(store,))
        results = pool.map(_hash_rows, chunks)
    try:
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(chunks), desc=f"hashing {count} images", unit="chunk", leave=False)
        return np.concatenate(list(results))
    finally:
        if pool is not None:
            pool.shutdown()


def cached_sizes(data: CompetitionData) -> list[int]:
    """Sizes of the caches present in any cache root, largest first (freshness is checked later)."""
    sizes = set()
    for root in cache_roots(data):
        if Path(root).is_dir():
            for child in Path(root).iterdir():
                if child.name.endswith("px") and child.name[:-2].isdigit() and int(child.name[:-2]) >= MIN_CACHE_SIZE:
                    sizes.add(int(child.name[:-2]))
    return sorted(sizes, reverse=True)


def pixel_store(data: CompetitionData, split: str, ids: Sequence[str]) -> ImageStore:
    """The largest fresh cache of `split` covering `ids`, else the image files decoded at full size."""
    for size in cached_sizes(data):
        store, _ = lookup_cache(data, split, size, ids)
        if store is not None:
            return store
    return DecodingStore(ids, split_sources(data, split), data.spec)


# ---------------------------------------------------------------- pairs


def _tile_pairs(words: np.ndarray, start: int, stop: int, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (i, j), start <= i < stop, i < j, whose summed Hamming distance may be <= limit (a superset:
    the uint8 sums wrap at 256, which only adds candidates; `near_pairs` checks them exactly)."""
    channels, count = words.shape
    found = []
    rows = stop - start
    xor = np.empty((rows, COLUMN_TILE), dtype=np.uint64)
    bits = np.empty((rows, COLUMN_TILE), dtype=np.uint8)
    total = np.empty((rows, COLUMN_TILE), dtype=np.uint8)
    for left in range(start, count, COLUMN_TILE):
        right = min(left + COLUMN_TILE, count)
        width = right - left
        x, b, t = xor[:, :width], bits[:, :width], total[:, :width]
        for c in range(channels):
            np.bitwise_xor(words[c, start:stop, None], words[c, None, left:right], out=x)
            np.bitwise_count(x, out=t if c == 0 else b)
            if c:
                np.add(t, b, out=t)
        i, j = np.nonzero(t <= limit)
        i, j = i + start, j + left
        keep = j > i
        if keep.any():
            found.append((i[keep], j[keep]))
    return found


def near_pairs(hashes: np.ndarray, distance: float, workers: int | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]:
    """Every pair (i < j) of rows of `hashes` (N x C uint64) whose mean per-channel Hamming distance is at
    most `distance`: (i, j, summed distance), sorted by i then j.

    Written by hand because no library does exact all-pairs Hamming search on packed codes: numpy's
    XOR + popcount over tiles of rows x columns, the tiles shared out over threads (numpy releases the GIL).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    count, channels = hashes.shape if hashes.ndim == 2 else (0, 0)
    empty = np.zeros(0, dtype=np.int64)
    if count < 2:
        return empty, empty, empty
    limit = int(np.floor(distance * channels + 1e-9))
    if limit < 0:
        return empty, empty, empty
    words = np.ascontiguousarray(hashes.T)
    blocks = [(start, min(start + ROW_TILE, count)) for start in range(0, count, ROW_TILE)]
    workers = workers or available_cores()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        found = [pair for part in pool.map(lambda block: _tile_pairs(words, *block, min(limit, 255)), blocks)
                 for pair in part]
    if not found:
        return empty, empty, empty
    i = np.concatenate([pair[0] for pair in found]).astype(np.int64)
    j = np.concatenate([pair[1] for pair in found]).astype(np.int64)
    exact = np.bitwise_count(hashes[i] ^ hashes[j]).sum(axis=1, dtype=np.int64)
    keep = exact <= limit
    i, j, exact = i[keep], j[keep], exact[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], exact[order]


def groups_of(count: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the pair graph: a component number per row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(count, count))
    return connected_components(graph, directed=False)[1]


# ---------------------------------------------------------------- the command


@dataclass
class DupsResult:
    """What `find_dups` found: the pairs table, a group per train Id, and the summary lines."""

    pairs: pd.DataFrame
    groups: pd.DataFrame
    distance: float
    counts: dict[str, int]
    sources: dict[str, str]
    summary: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def split_names(data: CompetitionData, train_ids: Sequence[str]) -> np.ndarray:
    """'train' for the Ids of train.csv, 'external' for those of the external labels files."""
    own = set(read_labels(data.root / data.spec.train_csv, data.spec)["Id"])
    return np.array(["train" if sample_id in own else "external" for sample_id in train_ids], dtype=object)


def find_dups(data: CompetitionData, distance: float = DEFAULT_DISTANCE, groups_path: str | os.PathLike =
              layout.DUPS_FILE, pairs_path: str | os.PathLike | None = None, workers: int | None = None,
              progress: bool = False) -> DupsResult:
    """Hash every train, external and test image, find all pairs within `distance`, and write `groups_path`
    (Id,group for every labelled Id: `kit folds --groups` reads it) and `pairs_path` (default: beside it,
    <name>_pairs.csv). Groups are the connected components of the pairs (through test images too): a
    group is named after its first labelled member."""
    if not 0 <= distance <= HASH_BITS:
        raise KitError(f"--distance {distance}: expected a mean per-channel Hamming distance in 0..{HASH_BITS}")
    labels = data.train_labels()
    train_ids = labels["Id"].tolist()
    test_ids = data.test_ids()
    stores = {"train": pixel_store(data, "train", train_ids), "test": pixel_store(data, "test", test_ids)}
    stores["train"].check()
    stores["test"].check()
    hashes = {split: hash_store(store, workers, progress) for split, store in stores.items()}
    all_hashes = np.concatenate([hashes["train"], hashes["test"]]) if len(test_ids) else hashes["train"]
    ids = np.array(train_ids + list(test_ids), dtype=object)
    splits = np.concatenate([split_names(data, train_ids), np.full(len(test_ids), "test", dtype=object)])
    i, j, total = near_pairs(all_hashes, distance, workers)
    channels = all_hashes.shape[1]

    matrix = labels_to_matrix(labels["labels"].tolist(), data.spec.num_classes)
    labelled = np.arange(len(ids)) < len(train_ids)
    both = labelled[i] & labelled[j]
    agree = np.full(len(i), "", dtype=object)
    if both.any():
        same = (matrix[i[both]] == matrix[j[both]]).all(axis=1)
        agree[both] = np.where(same, "yes", "no")
    pairs = pd.DataFrame({"Id1": ids[i], "Id2": ids[j], "split1": splits[i], "split2": splits[j],
                          "distance": np.round(total / channels, 4), "labels_agree": agree}, columns=PAIR_COLUMNS)

    component = groups_of(len(ids), i, j)
    # Name each group after its first labelled member (its first member if it has none).
    first = pd.Series(np.arange(len(ids))).groupby(component).transform("min").to_numpy()
    groups = pd.DataFrame({"Id": train_ids, "group": ids[first[: len(train_ids)]]})

    groups_path = Path(groups_path)
    pairs_path = Path(pairs_path) if pairs_path is not None else layout.dups_pairs(groups_path)
    io.write_csv(pairs, pairs_path)
    io.write_csv(groups, groups_path)
    result = DupsResult(pairs, groups, distance, {"train": int((splits == "train").sum()),
                                                  "external": int((splits == "external").sum()),
                                                  "test": len(test_ids)},
                        {split: store.description for split, store in stores.items()},
                        files={"groups": groups_path, "pairs": pairs_path})
    result.summary = summarise(result, component, splits)
    return result


def summarise(result: DupsResult, component: np.ndarray, splits: np.ndarray) -> list[str]:
    """Groups and their sizes, test images with a labelled twin, label agreement of labelled twins."""
    pairs = result.pairs
    counts = result.counts
    lines = [f"hashed {counts['train']} train, {counts['external']} external and {counts['test']} test images "
             f"(pHash per channel; train: {result.sources['train']}; test: {result.sources['test']})",
             f"{len(pairs)} pairs within mean channel distance {result.distance:g} of {HASH_BITS} bits"]
    kinds = pairs["split1"] + "-" + pairs["split2"]
    for kind, number in sorted(kinds.map(lambda k: "-".join(sorted(k.split("-")))).value_counts().items()):
        lines.append(f"  {kind}: {number} pairs")
    sizes = np.bincount(component)
    grouped = sizes[sizes > 1]
    if len(grouped):
        histogram = ", ".join(f"{n} of size {size}" for size, n in sorted(pd.Series(grouped).value_counts().items()))
        lines.append(f"{len(grouped)} duplicate groups ({histogram}); largest has {grouped.max()} images")
    else:
        lines.append("no duplicate groups")
    test = splits == "test"
    labelled_twin = set()
    for a, b, sa, sb in zip(pairs["Id1"], pairs["Id2"], pairs["split1"], pairs["split2"]):
        if sa == "test" and sb != "test":
            labelled_twin.add(a)
        elif sb == "test" and sa != "test":
            labelled_twin.add(b)
    lines.append(f"{len(labelled_twin)} of {int(test.sum())} test images have a train or external twin")
    judged = pairs["labels_agree"] != ""
    if judged.any():
        agree = int((pairs["labels_agree"] == "yes").sum())
        lines.append(f"labels agree in {agree} of {int(judged.sum())} labelled pairs "
                     f"({100.0 * agree / judged.sum():.1f}%)")
    lines.append(f"wrote {result.files['groups']} ({len(result.groups)} Ids, "
                 f"{result.groups['group'].nunique()} groups; for `kit folds --groups`) and {result.files['pairs']}")
    return lines


# ---------------------------------------------------------------- reading the pairs back


def read_pairs(path: str | os.PathLike, known_ids: Sequence[str]) -> pd.DataFrame:
    """A `kit dups` pairs file, checked: the columns, a number for every distance, only `known_ids`."""
    frame = io.read_csv(path, "pairs file", dtype={"Id1": str, "Id2": str}, keep_default_na=False)
    missing = [column for column in PAIR_COLUMNS[:5] if column not in frame.columns]
    if missing:
        raise KitError(f"{path}: line 1: expected columns {','.join(PAIR_COLUMNS)} (missing {', '.join(missing)})")
    known = set(known_ids)
    for column in ("Id1", "Id2"):
        unknown = np.flatnonzero(~frame[column].isin(known).to_numpy())
        if len(unknown):
            row = int(unknown[0])
            raise KitError(f"{path}: line {row + 2}: Id {frame[column].iloc[row]} is neither a train nor a test Id "
                           "of this data set (pairs from another data set? rerun `kit dups`)")
    distance = pd.to_numeric(frame["distance"], errors="coerce")
    bad = np.flatnonzero(distance.isna().to_numpy())
    if len(bad):
        raise KitError(f"{path}: line {bad[0] + 2}: distance {frame['distance'].iloc[bad[0]]!r} is not a number")
    frame["distance"] = distance.astype(np.float64)
    return frame
