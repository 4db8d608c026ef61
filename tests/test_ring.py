"""kit.data.ring.RingLoader: the batch path's reader threads and their ring of reused buffers, on real cache files.

References come from numpy reads of the cache's .npy file (np.load), never from the store under test."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, SequentialSampler

from kit.data.cache import CacheStore, build_cache
from kit.data.reading import CompetitionData
from kit.data.ring import RandomCrops, RingLoader, batch_order
from kit.data.spec import HPA
from kit.errors import KitError


@pytest.fixture(scope="module")
def cache_file(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ring") / "cache"
    build_cache(CompetitionData(synth_dir, HPA), 32, out=out, splits=["train"])
    return out / "32px" / "train.npy"


def shuffled(count: int, batch_size: int, seed: int, drop_last: bool = False) -> BatchSampler:
    return batch_order(count, batch_size, torch.Generator().manual_seed(seed), drop_last=drop_last)


def test_batches_are_the_cache_rows_in_the_sampler_order_with_any_thread_count(cache_file):
    pixels = np.load(cache_file)
    targets = np.random.default_rng(0).random((len(pixels), 28)).astype(np.float32)
    store = CacheStore(cache_file)
    expected_order = [list(b) for b in shuffled(len(pixels), 7, seed=4)]
    for threads in (0, 1, 3):
        loader = RingLoader(store, targets, shuffled(len(pixels), 7, seed=4), threads=threads)
        assert len(loader) == len(expected_order) == 9  # 60 images in 7s: the last batch holds 4
        for rows, (images, batch_targets) in zip(expected_order, loader, strict=True):
            assert images.dtype == torch.uint8 and images.shape == (len(rows), 32, 32, 4)
            assert np.array_equal(images.numpy(), pixels[rows])
            assert np.array_equal(batch_targets.numpy(), targets[rows])


def test_batches_kept_by_the_consumer_are_never_overwritten(cache_file):
    pixels = np.load(cache_file)
    loader = RingLoader(CacheStore(cache_file), np.zeros((len(pixels), 28)),
                        BatchSampler(SequentialSampler(range(len(pixels))), 4, False), threads=2)
    kept = list(loader)  # 15 batches, far more than the ring's places
    assert np.array_equal(torch.cat([images for images, _ in kept]).numpy(), pixels)
    views = [images.numpy() for images, _ in loader]  # a numpy view holds the memory too
    assert np.array_equal(np.concatenate(views), pixels)


def test_the_ring_reuses_its_buffers_when_the_consumer_lets_batches_go(cache_file):
    pixels = np.load(cache_file)
    loader = RingLoader(CacheStore(cache_file), np.zeros((len(pixels), 28)),
                        BatchSampler(SequentialSampler(range(len(pixels))), 4, False), threads=2)
    for _ in range(2):
        addresses, start = set(), 0
        for images, _ in loader:
            addresses.add(images.data_ptr())
            assert np.array_equal(images.numpy(), pixels[start:start + len(images)])
            start += len(images)
        # threads + 1 being read, plus the two last handed out: 15 batches go through 5 places
        assert len(addresses) <= loader.ahead + 2 < len(loader)


def test_random_crops_are_windows_of_the_cached_image_and_repeat_under_a_seed(cache_file):
    pixels = np.load(cache_file)
    store = CacheStore(cache_file)

    def epoch(threads: int, seed: int) -> np.ndarray:
        crops = RandomCrops(20, seed=seed)
        loader = RingLoader(store, np.zeros((len(pixels), 28)),
                            BatchSampler(SequentialSampler(range(len(pixels))), 8, False), threads, crops=crops)
        return np.concatenate([images.numpy() for images, _ in loader])

    cropped = epoch(threads=2, seed=1)
    assert cropped.shape == (60, 20, 20, 4)
    corners = set()
    for image, crop in zip(pixels, cropped):
        found = [(y, x) for y in range(13) for x in range(13) if np.array_equal(image[y:y + 20, x:x + 20], crop)]
        assert found, "a crop that is no window of its image"
        corners.add(found[0])
    assert len(corners) > 20  # each sample draws its own corner
    assert np.array_equal(epoch(threads=0, seed=1), cropped)
    assert not np.array_equal(epoch(threads=2, seed=2), cropped)


def test_a_truncated_cache_fails_with_one_line_and_leaves_no_reader_running(cache_file, tmp_path):
    short = tmp_path / "train.npy"
    short.write_bytes(cache_file.read_bytes())
    store = CacheStore(short, ids=[f"id{i}" for i in range(60)])
    os.truncate(short, short.stat().st_size - 1000)  # cut while in use: the last image loses its end
    before = threading.active_count()
    loader = RingLoader(store, np.zeros((60, 28)), BatchSampler(SequentialSampler(range(60)), 8, False), threads=2)
    with pytest.raises(KitError, match=r"train\.npy: row 59 \(Id id59\) is truncated; rebuild the cache"):
        for _ in loader:
            pass
    assert threading.active_count() == before


def test_stopping_early_ends_the_readers(cache_file):
    before = threading.active_count()
    loader = RingLoader(CacheStore(cache_file), np.zeros((60, 28)), shuffled(60, 4, seed=0), threads=3)
    batches = iter(loader)
    next(batches)
    batches.close()  # what a `break` out of the epoch (a budget stop) does
    assert threading.active_count() == before


def test_crops_larger_than_the_images_are_refused(cache_file):
    loader = RingLoader(CacheStore(cache_file), np.zeros((60, 28)), shuffled(60, 4, seed=0), crops=RandomCrops(40))
    with pytest.raises(ValueError, match="--crop 40 is larger than the 32 x 32 images"):
        next(iter(loader))
