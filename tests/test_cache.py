"""`kit cache` and the streaming loader: pixels equal direct decoding, staleness, resume, bad files, memory."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import kit.data.cache
from kit.cli import main
from kit.data.cache import CacheStore, build_cache, find_cache, lookup_cache, open_store
from kit.data.reading import CompetitionData, DecodingStore
from kit.data.spec import HPA
from kit.errors import KitError

SIZE = 20  # the fixture's images are 32 px: a non-integer shrink, where area interpolation differs from others


class PlainCv2:
    """The reference pixels, by plain OpenCV: each channel PNG read as it is and shrunk with INTER_AREA."""

    def __init__(self, folder, ids, size):
        self.folder, self.ids, self.size = folder, list(ids), size

    def read(self, index):
        planes = [cv2.imread(str(self.folder / f"{self.ids[index]}_{channel}.png"), cv2.IMREAD_UNCHANGED)
                  for channel in HPA.channels]
        return np.dstack([cv2.resize(p, (self.size, self.size), interpolation=cv2.INTER_AREA) for p in planes])


def direct(data, split, ids, size=SIZE):
    return PlainCv2(data.root / split, ids, size)


def assert_same_pixels(store, reference):
    assert store.ids == reference.ids
    for i in range(len(store)):
        assert np.array_equal(store.read(i), reference.read(i)), f"row {i} (Id {store.ids[i]}) differs"


def counting_decoder(monkeypatch):
    """Count the samples each build decodes (builds with workers=1 decode in this process)."""
    calls = []
    real = kit.data.cache.decode_sample

    def decode(store, row):
        calls.append(store.ids[row])
        return real(store, row)

    monkeypatch.setattr(kit.data.cache, "decode_sample", decode)
    return calls


def test_cache_equals_direct_decoding_pixel_for_pixel(data_copy):
    result = CliRunner().invoke(main, ["cache", "--size", str(SIZE), "--data", str(data_copy), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "train: 60 samples, 60 decoded, 0 kept" in result.output
    assert "test: 12 samples, 12 decoded, 0 kept" in result.output
    data = CompetitionData(data_copy, HPA)
    for split in ("train", "test"):
        store = open_store(data, split, SIZE)
        assert isinstance(store, CacheStore)
        assert store.description.startswith(f"using cache {data_copy / 'cache' / f'{SIZE}px' / split}.npy")
        assert_same_pixels(store, direct(data, split, store.ids))
    pixels = np.load(data_copy / "cache" / f"{SIZE}px" / "train.npy", mmap_mode="r")
    assert pixels.shape == (60, SIZE, SIZE, HPA.num_channels) and pixels.dtype == np.uint8


def test_without_a_cache_images_are_decoded_and_the_store_says_how_to_cache(data_copy):
    data = CompetitionData(data_copy, HPA)
    store = open_store(data, "train", SIZE)
    assert isinstance(store, DecodingStore)
    assert f"no cache for {SIZE}px" in store.description and f"kit cache --size {SIZE}" in store.description
    build_cache(data, SIZE, workers=1)
    other = open_store(data, "train", 12)  # a cache exists, but not for this size
    assert isinstance(other, DecodingStore) and "kit cache --size 12" in other.description


def test_a_subset_of_ids_reads_the_matching_rows(data_copy):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    ids = data.train_labels()["Id"].tolist()[::-3]
    store = find_cache(data, "train", SIZE, ids)
    assert store is not None and len(store) == len(ids)
    assert_same_pixels(store, direct(data, "train", ids))
    assert find_cache(data, "train", SIZE, ids + ["not-an-id"]) is None


def test_a_changed_file_makes_the_cache_stale_and_only_its_sample_is_decoded_again(data_copy, monkeypatch):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    sample_id = data.train_labels()["Id"][5]
    path = data_copy / "train" / f"{sample_id}_green.png"
    cv2.imwrite(str(path), 255 - cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even on a coarse-mtime file system

    store, message = lookup_cache(data, "train", SIZE, data.train_labels()["Id"].tolist())
    assert store is None and "stale" in message and sample_id in message
    assert isinstance(open_store(data, "train", SIZE), DecodingStore)
    assert find_cache(data, "test", SIZE, data.test_ids()) is not None  # the other split is untouched

    calls = counting_decoder(monkeypatch)
    reports = build_cache(data, SIZE, workers=1)
    assert calls == [sample_id]
    assert (reports[0].decoded, reports[0].reused) == (1, 59)
    store = open_store(data, "train", SIZE)
    assert isinstance(store, CacheStore)
    assert_same_pixels(store, direct(data, "train", store.ids))


def test_a_changed_id_makes_the_cache_stale_and_it_is_rebuilt(data_copy, monkeypatch):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    labels = pd.read_csv(data_copy / "train.csv")
    old = labels.loc[7, "Id"]
    labels.loc[7, "Id"] = "renamed-sample"
    labels.to_csv(data_copy / "train.csv", index=False)
    for channel in HPA.channels:
        os.rename(data_copy / "train" / f"{old}_{channel}.png", data_copy / "train" / f"renamed-sample_{channel}.png")

    ids = data.train_labels()["Id"].tolist()
    store, message = lookup_cache(data, "train", SIZE, ids)
    assert store is None and "lacks 1 Id(s), e.g. renamed-sample" in message
    calls = counting_decoder(monkeypatch)
    report = build_cache(data, SIZE, workers=1)[0]
    assert report.rebuilt_because == "the Ids changed" and len(calls) == 60  # all of train; test is kept
    assert_same_pixels(open_store(data, "train", SIZE), direct(data, "train", ids))


def test_other_channels_or_a_doctored_size_are_never_used(data_copy):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    ids = data.test_ids()
    swapped = CompetitionData(data_copy, dataclasses.replace(HPA, channels=("green", "red", "blue", "yellow")))
    store, message = lookup_cache(swapped, "test", SIZE, ids)
    assert store is None and "channels changed" in message

    manifest_path = data_copy / "cache" / f"{SIZE}px" / "test.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "size": 8}))
    store, message = lookup_cache(data, "test", SIZE, ids)
    assert store is None and "size changed" in message


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import kit.data.cache
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA

    real, calls = kit.data.cache.decode_sample, []

    def dying(store, row):
        if len(calls) == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # no finally block, no flush: as hard as an interruption gets
        calls.append(row)
        return real(store, row)

    kit.data.cache.decode_sample = dying
    data = CompetitionData(Path(sys.argv[1]), HPA)
    kit.data.cache.build_split(data, "train", int(sys.argv[3]), data.root / "cache", workers=1, chunk=1, flush_seconds=0)
""")


def test_a_killed_build_is_not_used_and_resumes_where_it_stopped(data_copy, monkeypatch):
    finished = 23
    run = subprocess.run([sys.executable, "-c", KILLER, str(data_copy), str(finished), str(SIZE)], capture_output=True,
                         text=True)
    assert run.returncode == -9, run.stderr
    data = CompetitionData(data_copy, HPA)
    ids = data.train_labels()["Id"].tolist()
    store, message = lookup_cache(data, "train", SIZE, ids)
    assert store is None and "incomplete" in message

    calls = counting_decoder(monkeypatch)
    report = build_cache(data, SIZE, workers=1, splits=["train"])[0]
    assert (report.reused, report.decoded) == (finished, 60 - finished)
    assert sorted(calls) == sorted(ids[finished:])
    assert_same_pixels(open_store(data, "train", SIZE), direct(data, "train", ids))


def test_unreadable_images_are_all_named_and_the_command_fails(data_copy, synth_dir, monkeypatch):
    data = CompetitionData(data_copy, HPA)
    train_ids, test_id = data.train_labels()["Id"].tolist(), data.test_ids()[2]
    broken = [("train", train_ids[3], "red"), ("train", train_ids[40], "yellow"), ("test", test_id, "blue")]
    for folder, sample_id, channel in broken:
        path = data_copy / folder / f"{sample_id}_{channel}.png"
        path.write_bytes(path.read_bytes()[:40])  # a truncated PNG
    result = CliRunner().invoke(main, ["cache", "--size", str(SIZE), "--data", str(data_copy)])
    assert result.exit_code == 1
    assert "3 unreadable sample(s)" in result.output
    assert "test: 12 samples, 11 decoded" in result.output  # the run went on past train's bad files
    for folder, sample_id, channel in broken:
        assert f"Id {sample_id}: cannot decode {data_copy / folder / f'{sample_id}_{channel}.png'}" in result.output
    assert "Traceback" not in result.output
    assert isinstance(open_store(data, "train", SIZE), DecodingStore)
    assert isinstance(open_store(data, "test", SIZE), DecodingStore)

    for folder, sample_id, channel in broken:  # repair: only the three samples are decoded again
        name = f"{sample_id}_{channel}.png"
        (data_copy / folder / name).write_bytes((synth_dir / folder / name).read_bytes())
    calls = counting_decoder(monkeypatch)
    build_cache(data, SIZE, workers=1)
    assert sorted(calls) == sorted(sample_id for _, sample_id, _ in broken)
    assert isinstance(open_store(data, "train", SIZE), CacheStore)


def test_missing_size_is_a_usage_error(data_copy):
    result = CliRunner().invoke(main, ["cache", "--data", str(data_copy)])
    assert result.exit_code == 2 and "--size" in result.output


def test_a_build_error_names_no_traceback_for_a_missing_data_folder(tmp_path):
    with pytest.raises(KitError, match="data folder not found"):
        build_cache(CompetitionData(tmp_path / "nowhere", HPA), SIZE)


STREAMER = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from kit.data.cache import CacheStore
    from kit.data.loader import ImageDataset, make_loader

    store = CacheStore(sys.argv[1])
    loader = make_loader(ImageDataset(store, targets=np.zeros((len(store), 3))), batch_size=16)
    batches = iter(loader)
    for _ in range(4):  # warm up: allocator pools, lazy imports
        next(batches)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = 64 + sum(len(images) for images, _ in batches)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(seen, (after - before) * 1024)  # ru_maxrss is in KiB on Linux
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units and sparse files as on Linux")
def test_the_loader_streams_a_data_set_larger_than_its_memory_budget(tmp_path):
    # A sparse 640 MB cache file (no disk used): one epoch over it must not raise peak RSS by more than 64 MB.
    size, count, budget = 256, 2560, 64 * 2**20
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 4))
    data_bytes = count * size * size * 4
    run = subprocess.run([sys.executable, "-c", STREAMER, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    seen, growth = map(int, run.stdout.split())
    assert seen == count
    assert data_bytes >= 10 * budget
    assert growth < budget, f"peak RSS grew by {growth / 2**20:.0f} MB over a {data_bytes / 2**20:.0f} MB epoch"


def test_a_cache_elsewhere_is_found_through_kit_cache(data_copy, tmp_path, monkeypatch):
    data = CompetitionData(data_copy, HPA)
    result = CliRunner().invoke(main, ["cache", "--size", str(SIZE), "--data", str(data_copy),
                                       "--out", str(tmp_path / "elsewhere"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "set KIT_CACHE=" in result.output
    assert find_cache(data, "test", SIZE, data.test_ids()) is None
    monkeypatch.setenv("KIT_CACHE", str(tmp_path / "elsewhere"))
    assert find_cache(data, "test", SIZE, data.test_ids()) is not None


def test_two_builds_of_one_cache_do_not_run_at_once(data_copy):
    fcntl = pytest.importorskip("fcntl")

    data = CompetitionData(data_copy, HPA)
    folder = data_copy / "cache" / f"{SIZE}px"
    folder.mkdir(parents=True)
    with open(folder / ".train.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(KitError, match="another `kit cache` is building it"):
            build_cache(data, SIZE, workers=1)


def test_a_truncated_pixel_file_is_never_used_and_is_rebuilt(data_copy):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    pixels = data_copy / "cache" / f"{SIZE}px" / "train.npy"
    with open(pixels, "r+b") as handle:  # as a full disk or an interrupted copy leaves it
        handle.truncate(pixels.stat().st_size - 100)
    ids = data.train_labels()["Id"].tolist()
    store, message = lookup_cache(data, "train", SIZE, ids)
    assert store is None and "truncated" in message
    assert isinstance(open_store(data, "train", SIZE), DecodingStore)
    report = build_cache(data, SIZE, workers=1, splits=["train"])[0]
    assert report.decoded == 60 and "damaged" in report.rebuilt_because
    assert_same_pixels(open_store(data, "train", SIZE), direct(data, "train", ids))


@pytest.mark.parametrize("tamper, message", [
    (lambda m: {**m, "ids": [m["ids"][1], m["ids"][0], *m["ids"][2:]]}, "stale: files of Id"),  # rows swapped
    (lambda m: {**m, "ids": m["ids"][:-1]}, "lacks 1 Id(s)"),
    (lambda m: {**m, "signature_sha256": "0" * 64}, "inconsistent (signature file changed)"),
    (lambda m: {**m, "channels": ["red", "green", "blue"]}, "channels changed"),
    (lambda m: "{not json", "no cache for"),
])
def test_a_tampered_manifest_is_never_trusted(data_copy, tamper, message):
    data = CompetitionData(data_copy, HPA)
    build_cache(data, SIZE, workers=1)
    path = data_copy / "cache" / f"{SIZE}px" / "train.json"
    changed = tamper(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    store, text = lookup_cache(data, "train", SIZE, data.train_labels()["Id"].tolist())
    assert store is None and message in text
    build_cache(data, SIZE, workers=1, splits=["train"])  # and `kit cache` repairs it
    store = open_store(data, "train", SIZE)
    assert isinstance(store, CacheStore)
    assert_same_pixels(store, direct(data, "train", store.ids))


def test_a_moved_data_folder_or_another_extension_makes_the_cache_stale(data_copy, tmp_path):
    build_cache(CompetitionData(data_copy, HPA), SIZE, workers=1)
    moved = tmp_path / "moved"
    os.rename(data_copy, moved)
    data = CompetitionData(moved, HPA)
    store, message = lookup_cache(data, "test", SIZE, data.test_ids())
    assert store is None and "sources changed" in message and str(data_copy / "test") in message
    report = build_cache(data, SIZE, workers=1, splits=["test"])[0]
    assert report.decoded == 12 and "sources changed" in report.rebuilt_because
    assert isinstance(open_store(data, "test", SIZE), CacheStore)

    jpg = CompetitionData(moved, dataclasses.replace(HPA, image_ext="jpg"))
    store, message = lookup_cache(jpg, "test", SIZE, data.test_ids())
    assert store is None and "image_ext changed ('png' in the cache, 'jpg' now)" in message


def test_a_cache_that_does_not_fit_the_disk_is_refused_before_anything_is_written(data_copy, tmp_path, monkeypatch):
    import shutil

    import kit.data.cache_space

    rows = len(pd.read_csv(data_copy / HPA.train_csv)) + len(pd.read_csv(data_copy / HPA.sample_submission))
    need = rows * 64 * 64 * len(HPA.channels)  # uint8 pixels of every train and test image at 64 px
    real = shutil.disk_usage

    def disk(free):
        return lambda path: real(path)._replace(free=free)

    out = tmp_path / "cache"
    monkeypatch.setattr(kit.data.cache_space.shutil, "disk_usage", disk(need - 1))
    result = CliRunner().invoke(main, ["cache", "--data", str(data_copy), "--size", "64", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {out}: the cache (train, test) needs {need / 1e9:.1f} GB, only "
                                     f"{(need - 1) / 1e9:.1f} GB free there; nothing was written. Choose another "
                                     "folder with --out or a smaller --size")
    assert not out.exists()

    monkeypatch.setattr(kit.data.cache_space.shutil, "disk_usage", disk(need))  # exactly enough
    result = CliRunner().invoke(main, ["cache", "--data", str(data_copy), "--size", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
