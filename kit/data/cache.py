"""`kit cache`: every sample decoded once, resized to S x S, in one uint8 array on disk per split.

Layout of a cache for size S (under a cache root, see `cache_roots`):

    <root>/<S>px/<split>.npy        N x S x S x C uint8, a .npy file (np.load(..., mmap_mode='r') opens it)
    <root>/<S>px/<split>.json       the manifest: size, channels, extension, source folders, the Ids (row order),
                                    the sha256 of the signature file, `complete`, and the unreadable files if any
    <root>/<S>px/<split>.sig.npy    N x C x 3 int64: source index, file size and mtime (ns) of every channel file
    <root>/<S>px/<split>.done       N bytes, 1 where the row holds that sample's pixels (the resume bitmap)

Pixels are written with `DecodingStore.read` (decode + `kit.data.reading.resize`), so a cache equals direct decoding
pixel for pixel. A build resumes: rows whose done byte is set and whose files are unchanged are kept, the rest
are decoded. Done bytes are set only after the pixels are fsync'ed, and the manifest says `complete` only after
every row is done, so a killed build never leaves a cache that looks usable.

Freshness (`find_cache`): the manifest must be complete and match the size, channels, extension and source
folders; the requested Ids must all be in it; and every channel file of every requested Id is stat'ed and its
size and mtime compared with the signature. That is one stat per file (about 3 us warm, so ~0.4 s for HPA's
124,288 train files), paid once per `open_store` call (a training or prediction run), not per epoch.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit import io
from kit.data.cache_space import check_space
from kit.data.dicom import window_meta
from kit.data.reading import CompetitionData, DecodingStore, ImageStore, Source
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.system import available_cores

FORMAT = 1
CACHE_ENV = "KIT_CACHE"
SPLITS = ("train", "test")


# ---------------------------------------------------------------- where caches live


def cache_roots(data: CompetitionData) -> list[Path]:
    """Where caches are looked for, in order: $KIT_CACHE, <data>/cache, ./cache (the working folder).

    `kit cache` writes to the first of these that it can write to ($KIT_CACHE, else <data>/cache, else ./cache:
    on Kaggle the data folder is read-only, so the cache lands in /kaggle/working/cache).
    """
    roots = []
    if os.environ.get(CACHE_ENV):
        roots.append(Path(os.environ[CACHE_ENV]))
    roots += [data.root / "cache", Path("cache")]
    unique, seen = [], set()
    for root in roots:
        key = os.path.abspath(root)
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def default_cache_root(data: CompetitionData) -> Path:
    """The folder `kit cache` writes to when no --out is given (see `cache_roots`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.access(data.root, os.W_OK) or (data.root / "cache").is_dir() and os.access(data.root / "cache", os.W_OK):
        return data.root / "cache"
    return Path("cache")


def cache_dir(root: str | os.PathLike, size: int) -> Path:
    return Path(root) / f"{size}px"


# ---------------------------------------------------------------- the files of one split


@dataclass
class SplitFiles:
    folder: Path
    split: str

    @property
    def pixels(self) -> Path:
        return self.folder / f"{self.split}.npy"

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.split}.json"

    @property
    def signature(self) -> Path:
        return self.folder / f"{self.split}.sig.npy"

    @property
    def done(self) -> Path:
        return self.folder / f"{self.split}.done"


def split_sources(data: CompetitionData, split: str) -> list[Source]:
    return data.train_sources() if split == "train" else data.test_sources()


def split_ids(data: CompetitionData, split: str) -> list[str]:
    return data.train_labels()["Id"].tolist() if split == "train" else data.test_ids()


def source_meta(sources: Sequence[Source]) -> list[dict]:
    # The layout is named only where it is not the default, so caches built before layouts existed stay valid.
    return [{"dir": os.path.abspath(s.image_dir), "ext": s.image_ext, **({"layout": s.layout} if s.layout != "channels"
             else {})} for s in sources]


def signatures(store: DecodingStore, rows: Sequence[int]) -> np.ndarray:
    """len(rows) x F x 3 int64: (source index, size, mtime_ns) of each of a sample's F files (one per channel, or
    the one file); -1s for a missing file.

    Resolves each Id's source exactly as `DecodingStore.read` does, so a sample moving between sources counts.
    """
    channels = store.spec.channels
    per_sample = 1 if store.spec.image_layout == "file" else len(channels)
    out = np.full((len(rows), per_sample, 3), -1, dtype=np.int64)
    for k, row in enumerate(rows):
        sample_id = store.ids[row]
        source = store.source_for(sample_id)
        out[k, :, 0] = store.sources.index(source)
        for c, path in enumerate(source.files(sample_id, channels)[:per_sample]):
            try:
                st = os.stat(path)
            except OSError:
                continue
            out[k, c, 1:] = (st.st_size, st.st_mtime_ns)
    return out


def read_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def npy_layout(path: Path) -> tuple[tuple[int, ...], int]:
    """(shape, byte offset of the data) of a uint8 .npy file; ValueError if it is not one, or is truncated."""
    fmt = np.lib.format
    with open(path, "rb") as handle:
        version = fmt.read_magic(handle)
        header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = header(handle)
        if dtype != np.uint8 or fortran:
            raise ValueError(f"{path}: not a C-ordered uint8 array")
        offset = handle.tell()
        if os.fstat(handle.fileno()).st_size < offset + int(np.prod(shape)):  # cut short (a full disk, a copy)
            raise ValueError(f"{path}: truncated, shorter than its {tuple(shape)} header says")
        return tuple(shape), offset


def meta_mismatch(manifest: dict, split: str, size: int, spec: CompetitionSpec, sources: Sequence[Source]) -> str | None:
    """Why a manifest does not describe this split/size/spec/sources, or None when it does."""
    expected = {"split": split, "size": size, "channels": list(spec.channels), "image_ext": spec.image_ext,
                "sources": source_meta(sources), **window_meta(spec)}
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"{key} changed ({manifest.get(key)!r} in the cache, {value!r} now)"
    return None


# ---------------------------------------------------------------- reading a cache


class CacheStore(ImageStore):
    """Reads rows of a cache's `<split>.npy` on demand: one positioned read per sample, nothing held in memory.

    Reads go through `os.preadv` into a fresh array rather than through a memory map, so the pages read stay
    in the kernel's page cache and are never counted in (or accumulated by) the reading process; each process
    (DataLoader worker) opens its own file descriptor.
    """

    def __init__(self, path: str | os.PathLike, ids: Sequence[str] | None = None, rows: Sequence[int] | None = None,
                 description: str | None = None):
        self.path = Path(path)
        self.shape, self.offset = npy_layout(self.path)
        if len(self.shape) != 4:
            raise KitError(f"{self.path}: expected an N x S x S x C array, found shape {self.shape}")
        self.rows = np.arange(self.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        self.ids = [str(i) for i in range(len(self.rows))] if ids is None else list(ids)
        if len(self.ids) != len(self.rows):
            raise ValueError("ids and rows differ in length")
        self.sample_shape = tuple(self.shape[1:])
        self.sample_bytes = int(np.prod(self.sample_shape))
        self.description = description or f"using cache {self.path} ({len(self.ids)} images, {self.shape[1]}px)"
        self._fd: int | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _handle(self) -> int:
        if self._pid != os.getpid():  # a forked DataLoader worker must not share its parent's descriptor
            with self._lock:  # reader threads (kit.data.ring) share one descriptor: open it once
                if self._pid != os.getpid():
                    self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                    self._pid = os.getpid()
        return self._fd

    def read(self, index: int) -> np.ndarray:
        return self.read_into(index, np.empty(self.sample_shape, dtype=np.uint8))

    def read_into(self, index: int, image: np.ndarray) -> np.ndarray:
        """Sample `index` read into `image` (C-contiguous uint8 of the sample's shape, e.g. a row of a batch)."""
        return self._read_at(index, 0, image)

    def read_band(self, index: int, top: int, band: np.ndarray) -> np.ndarray:
        """Rows top .. top + len(band) of sample `index`, at full width, read into `band` (the rows a crop spans:
        one positioned read, nothing else of the image)."""
        if band.shape[1:] != self.sample_shape[1:] or not 0 <= top <= self.sample_shape[0] - len(band):
            raise ValueError(f"rows {top}..{top + len(band)} of shape {band.shape[1:]} are not in {self.sample_shape}")
        return self._read_at(index, top * int(np.prod(self.sample_shape[1:])), band)

    def _read_at(self, index: int, skip: int, out: np.ndarray) -> np.ndarray:
        """`out.nbytes` bytes of sample `index`, from `skip` bytes into it, read into `out`."""
        offset = self.offset + int(self.rows[index]) * self.sample_bytes + skip
        fd = self._handle()
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [out], offset)
        else:  # pragma: no cover - Windows has no positioned read
            with self._lock:
                os.lseek(fd, offset, os.SEEK_SET)
                got = os.readv(fd, [out])
        if got != out.nbytes:
            raise KitError(f"{self.path}: row {self.rows[index]} (Id {self.ids[index]}) is truncated; rebuild the cache")
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_fd=None, _pid=None, _lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


def check_cache(folder: Path, data: CompetitionData, split: str, size: int, ids: Sequence[str]) -> tuple[CacheStore | None, str]:
    """(store, description) when the cache in `folder` is complete, fresh and covers `ids`; else (None, why not)."""
    files = SplitFiles(folder, split)
    manifest = read_manifest(files.manifest)
    if manifest is None:
        return None, f"no cache for {size}px in {folder}"
    sources = split_sources(data, split)
    why = meta_mismatch(manifest, split, size, data.spec, sources)
    if why:
        return None, f"cache {files.pixels} is stale: {why}"
    if not manifest.get("complete"):
        return None, f"cache {files.pixels} is incomplete (interrupted or unreadable images)"
    row_of = {sample_id: row for row, sample_id in enumerate(manifest["ids"])}
    missing = [sample_id for sample_id in ids if sample_id not in row_of]
    if missing:
        return None, f"cache {files.pixels} is stale: it lacks {len(missing)} Id(s), e.g. {missing[0]}"
    rows = np.array([row_of[sample_id] for sample_id in ids], dtype=np.int64)
    try:
        if io.sha256_file(files.signature) != manifest.get("signature_sha256"):
            return None, f"cache {files.pixels} is inconsistent (signature file changed)"
        stored = np.load(files.signature)
        done = np.fromfile(files.done, dtype=np.uint8)
        shape, _ = npy_layout(files.pixels)
    except (OSError, ValueError) as err:
        return None, f"cache {files.pixels} is unreadable ({err})"
    n = len(manifest["ids"])
    if shape != (n, size, size, data.spec.num_channels) or len(done) != n or stored.shape[0] != n:
        return None, f"cache {files.pixels} is inconsistent (array shapes differ from the manifest)"
    if not done[rows].all():
        return None, f"cache {files.pixels} is incomplete"
    current = signatures(DecodingStore(manifest["ids"], sources, data.spec), rows)
    changed = np.flatnonzero((current != stored[rows]).any(axis=(1, 2)))
    if len(changed):
        return None, f"cache {files.pixels} is stale: files of Id {ids[changed[0]]} changed ({len(changed)} Id(s) in all)"
    description = f"using cache {files.pixels} ({len(ids)} {split} images at {size}px)"
    return CacheStore(files.pixels, ids, rows, description), description


def find_cache(data: CompetitionData, split: str, size: int, ids: Sequence[str]) -> CacheStore | None:
    """The cached pixels of `ids` at `size` if a complete, fresh cache covering them exists, else None.

    Looks in every folder of `cache_roots(data)`; the store's `description` says which cache is used.
    """
    return lookup_cache(data, split, size, ids)[0]


def lookup_cache(data: CompetitionData, split: str, size: int, ids: Sequence[str]) -> tuple[CacheStore | None, str]:
    """Like `find_cache`, plus a one-line message: which cache is used, or why none is and what to run."""
    reasons = []
    for root in cache_roots(data):
        folder = cache_dir(root, size)
        if not (folder / f"{split}.json").is_file():
            continue
        store, message = check_cache(folder, data, split, size, ids)
        if store is not None:
            return store, message
        reasons.append(message)
    reason = reasons[0] if reasons else f"no cache for {size}px"
    return None, f"decoding {data.spec.image_ext} files, resized to {size}px ({reason}; run `kit cache --size {size}`)"


# ---------------------------------------------------------------- building a cache


@dataclass
class SplitReport:
    split: str
    path: Path
    total: int
    decoded: int = 0
    reused: int = 0
    rebuilt_because: str | None = None
    bad: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.bad


_WORKER: dict = {}


def _init_worker(ids, sources, spec, size, path, offset, pool: bool = False) -> None:
    import cv2

    cv2.setNumThreads(1)
    if pool:  # Ctrl-C goes to the whole process group: the parent stops the pool and keeps what is done
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(store=DecodingStore(ids, sources, spec, size), offset=offset,
                   fd=os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0)), size=size, path=path)


def decode_sample(store: DecodingStore, row: int) -> np.ndarray:
    """Decode and resize one sample exactly as direct decoding does (the cache's pixels are these)."""
    return store.read(row)


def _decode_rows(rows: Sequence[int]) -> list[tuple[int, str | None]]:
    """Decode `rows` and write each into the pixel file; (row, None) or (row, what is wrong with its files)."""
    store, fd, offset, size = _WORKER["store"], _WORKER["fd"], _WORKER["offset"], _WORKER["size"]
    expected = (size, size, store.spec.num_channels)
    results = []
    for row in rows:
        try:
            image = decode_sample(store, row)
        except KitError as err:
            results.append((row, str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - any decoder failure is reported by Id, the build goes on
            results.append((row, f"Id {store.ids[row]}: {type(err).__name__}: {err}"))
            continue
        if image.shape != expected or image.dtype != np.uint8:
            results.append((row, f"Id {store.ids[row]}: decoded to {image.shape} {image.dtype}, expected {expected} uint8"))
            continue
        data = np.ascontiguousarray(image).tobytes()
        try:
            written = os.pwrite(fd, data, offset + row * len(data))
        except OSError as err:
            raise KitError(f"{_WORKER['path']}: cannot write the cache ({err})") from None
        if written != len(data):
            raise KitError(f"{_WORKER['path']}: short write ({written} of {len(data)} bytes); is the disk full?")
        results.append((row, None))
    return results


def _write_manifest(files: SplitFiles, split, size, spec, sources, ids, complete, bad) -> None:
    manifest = {
        "format": FORMAT, "split": split, "size": size, "channels": list(spec.channels), "image_ext": spec.image_ext,
        **window_meta(spec),
        "sources": source_meta(sources), "shape": [len(ids), size, size, spec.num_channels], "dtype": "uint8",
        "complete": bool(complete), "bad": list(bad), "signature_sha256": io.sha256_file(files.signature),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ids": list(ids),
    }
    io.write_text(files.manifest, json.dumps(manifest))


def _write_signature(files: SplitFiles, signature: np.ndarray) -> None:
    with io.atomic_path(files.signature) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, signature)


def _plan(files: SplitFiles, split, size, spec, sources, ids, current: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Rows still to decode (and why the rest of the cache is thrown away, if it is); prepares the files.

    Keeps the rows of an existing cache for the same split/size/spec/sources/Ids whose done byte is set and
    whose files are unchanged; anything else about an existing cache starts it over.
    """
    n, shape = len(ids), (len(ids), size, size, spec.num_channels)
    manifest = read_manifest(files.manifest)
    reason = None
    if manifest is None:
        reason = "new" if not files.manifest.exists() else "unreadable manifest"
    else:
        reason = meta_mismatch(manifest, split, size, spec, sources)
        if reason is None and manifest.get("ids") != list(ids):
            reason = "the Ids changed"
        if reason is None:
            try:
                ok = (io.sha256_file(files.signature) == manifest.get("signature_sha256")
                      and npy_layout(files.pixels)[0] == shape and files.done.stat().st_size == n)
            except (OSError, ValueError):
                ok = False
            if not ok:
                reason = "its files are inconsistent (an interrupted start or a damaged file)"
    if reason is None:
        stored = np.load(files.signature)
        done = np.memmap(files.done, dtype=np.uint8, mode="r+", shape=(n,))
        changed = (stored != current).any(axis=(1, 2))
        if changed.any() or not manifest.get("complete"):
            # Invalidate first: from here on nothing may treat the cache as complete until every row is redone.
            _write_manifest(files, split, size, spec, sources, ids, False, manifest.get("bad", []))
            done[changed] = 0
            done.flush()
            _write_signature(files, current)
            _write_manifest(files, split, size, spec, sources, ids, False, manifest.get("bad", []))
        todo = np.flatnonzero(done == 0)
        del done
        return todo, (f"files changed for {changed.sum()} Id(s)" if changed.any() else None)
    # Start over. The manifest goes first so that a crash in between leaves nothing that looks usable.
    files.folder.mkdir(parents=True, exist_ok=True)
    files.manifest.unlink(missing_ok=True)
    with io.atomic_path(files.pixels) as tmp:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)  # header + a sparse file
    with io.atomic_path(files.done) as tmp:
        np.zeros(n, dtype=np.uint8).tofile(tmp)
    _write_signature(files, current)
    _write_manifest(files, split, size, spec, sources, ids, False, [])
    return np.arange(n), (None if reason == "new" else reason)


@contextlib.contextmanager
def _exclusive(files: SplitFiles):
    """One build per split folder at a time: two would overwrite each other's rows and done bytes."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, builds are not guarded
        yield
        return
    with open(files.folder / f".{files.split}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise KitError(f"{files.pixels}: another `kit cache` is building it; wait for it to finish") from None
        yield


def build_split(data: CompetitionData, split: str, size: int, root: Path, workers: int = 1, progress: bool = False,
                chunk: int = 8, flush_seconds: float = 5.0, ids: Sequence[str] | None = None) -> SplitReport:
    """Bring the cache of one split at `size` up to date under `root`; see `build_cache`."""
    files = SplitFiles(cache_dir(root, size), split)
    files.folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(files):
        return _build_split(data, split, size, files, workers, progress, chunk, flush_seconds, ids)


def _build_split(data, split, size, files: SplitFiles, workers, progress, chunk, flush_seconds, ids) -> SplitReport:
    spec = data.spec
    sources = split_sources(data, split)
    ids = split_ids(data, split) if ids is None else list(ids)
    store = DecodingStore(ids, sources, spec, size)
    current = signatures(store, range(len(ids)))
    todo, reason = _plan(files, split, size, spec, sources, ids, current)
    report = SplitReport(split, files.pixels, len(ids), reused=len(ids) - len(todo), rebuilt_because=reason)
    shape, offset = npy_layout(files.pixels)

    done = np.memmap(files.done, dtype=np.uint8, mode="r+", shape=(len(ids),))
    fd = os.open(files.pixels, os.O_RDWR | getattr(os, "O_BINARY", 0))
    pending: list[int] = []
    bad: dict[int, str] = {}
    last_flush = time.monotonic()

    def flush() -> None:
        # Pixels reach the disk before the done bytes that vouch for them.
        nonlocal last_flush
        if pending:
            os.fsync(fd)
            done[pending] = 1
            done.flush()
            pending.clear()
        last_flush = time.monotonic()

    def collect(results) -> None:
        for row, error in results:
            if error is None:
                pending.append(row)
            else:
                bad[row] = error
        if time.monotonic() - last_flush >= flush_seconds:
            flush()

    bar = _progress(len(todo), f"cache {split} {size}px", progress)
    chunks = [todo[i : i + chunk].tolist() for i in range(0, len(todo), chunk)]
    initargs = (ids, sources, spec, size, str(files.pixels), offset)
    try:
        if workers <= 1 or len(chunks) <= 1:
            _init_worker(*initargs)
            try:
                for rows in chunks:
                    collect(_decode_rows(rows))
                    bar.update(len(rows))
            finally:
                os.close(_WORKER.pop("fd"))
                _WORKER.clear()
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(*initargs, True)) as pool:
                futures = {pool.submit(_decode_rows, rows): len(rows) for rows in chunks}
                try:
                    for future in as_completed(futures):
                        collect(future.result())
                        bar.update(futures[future])
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        flush()
        os.close(fd)
        bar.close()
    report.decoded = len(todo) - len(bad)
    report.bad = [bad[row] for row in sorted(bad)]
    _write_manifest(files, split, size, spec, sources, ids, not bad, report.bad)
    return report


def build_cache(data: CompetitionData, size: int, out: str | os.PathLike | None = None, workers: int | None = None,
                progress: bool = False, splits: Sequence[str] = SPLITS,
                on_split: Callable[[SplitReport], None] | None = None) -> list[SplitReport]:
    """Decode every sample of `splits` once, resized to size x size, into `<out>/<size>px/<split>.npy`.

    Incremental: unchanged, finished rows of an existing cache are kept; an interrupted build resumes. An
    unreadable image does not stop the build: every one is collected, and a KitError listing them all (by Id
    and file) is raised at the end; the cache then stays incomplete and is never used.
    """
    if size < 1:
        raise KitError(f"--size must be positive, got {size}")
    data.check_root()
    root = Path(out) if out is not None else default_cache_root(data)
    workers = workers or available_cores()
    check_space(root, [(split, SplitFiles(cache_dir(root, size), split).done, len(split_ids(data, split)))
                       for split in splits], size * size * data.spec.num_channels)  # before anything is written
    reports = []
    for split in splits:
        report = build_split(data, split, size, root, workers=workers, progress=progress)
        reports.append(report)
        if on_split is not None:
            on_split(report)
    bad = [line for report in reports for line in report.bad]
    if bad:
        raise KitError(f"{len(bad)} unreadable sample(s); the cache stays incomplete and unused until they are "
                       "fixed and `kit cache` is run again:\n  " + "\n  ".join(bad))
    return reports


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled or total == 0, dynamic_ncols=True)


def open_store(data: CompetitionData, split: str, size: int | None = None, ids: Sequence[str] | None = None) -> ImageStore:
    """The pixels of `split` ('train' or 'test'): from the pre-resized cache when one is fresh, else decoded.
    """
    if split not in ("train", "test"):
        raise KitError(f"unknown split {split!r}: expected 'train' or 'test'")
    if ids is None:
        ids = split_ids(data, split)
    miss = None
    if size is not None:
        store, miss = lookup_cache(data, split, size, ids)  # the store, or why none is used and what to run
        if store is not None:
            return store
    sources = split_sources(data, split)
    store = DecodingStore(ids, sources, data.spec, size)
    if miss:
        store.description = miss
    return store
