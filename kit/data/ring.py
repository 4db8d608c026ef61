"""The batch path's reader of a cache: reader threads read each batch's rows straight into one of a ring of reused
batch buffers (pinned on CUDA), and on CUDA each filled buffer is copied to the device on a side stream.

Why threads and not DataLoader workers: a worker process builds each batch in a fresh shared-memory block (page
faults on every byte, then a map in the main process), and the pin thread copies it once more into pinned memory;
that costs more CPU than reading the pixels did. A positioned read (`os.preadv`) and numpy's copies release the GIL,
so threads in the main process can read into buffers that stay mapped and pinned from batch to batch.

Reusing a buffer is where a loader can silently corrupt a batch, so a buffer is refilled only when all three hold:
- its batch is two or more hand-outs old (the consumer's loop variable still holds the one before the current);
- on CUDA, its copy to the device has finished (the reader thread waits on the CUDA event recorded after it);
- nothing outside the ring references its memory (the storage's use count: a batch kept in a list, a view or a
  numpy array of it). Otherwise the ring gives that place a new buffer and leaves the old one to its holder.

What a batch holds depends only on its indices and the crop offsets, drawn in the calling thread in batch order, so
the batches are the same with any number of threads.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import BatchSampler, RandomSampler, Sampler


def batch_order(count: int, batch_size: int, generator: torch.Generator, sampler: Sampler | None = None,
                drop_last: bool = False) -> BatchSampler:
    """The batches of indices a DataLoader would make: `sampler`'s order, or a shuffle driven by `generator`."""
    order = sampler if sampler is not None else RandomSampler(range(count), generator=generator)
    return BatchSampler(order, batch_size, drop_last)


class RandomCrops:
    """Top-left corners of random `size` x `size` crops, one per sample, from a generator of their own that each
    epoch reseeds (`set_random_seed`, as the batch path's other random parts)."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.generator = torch.Generator()
        self.set_random_seed(seed)

    def set_random_seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def corners(self, count: int, height: int, width: int) -> list[tuple[int, int]]:
        if self.size > min(height, width):
            raise ValueError(f"--crop {self.size} is larger than the {height} x {width} images")
        ys = torch.randint(0, height - self.size + 1, (count,), generator=self.generator).tolist()
        xs = torch.randint(0, width - self.size + 1, (count,), generator=self.generator).tolist()
        return list(zip(ys, xs))


def _use_count(tensor: torch.Tensor) -> int | None:
    """How many holders the tensor's memory has (torch's private counter; None where this torch lacks it)."""
    counter = getattr(torch._C, "_storage_Use_Count", None)
    return None if counter is None else counter(tensor.untyped_storage()._cdata)


class _Buffer:
    """One place of the ring: a uint8 batch array, the use count it has when only the ring holds it, and the event
    after which its last copy to the device is done."""

    def __init__(self, shape: tuple[int, ...], pin: bool):
        self.images = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)
        self.alone = _use_count(self.images)
        self.copied: torch.cuda.Event | None = None

    def free(self) -> bool:
        return self.alone is not None and _use_count(self.images) == self.alone


class RingLoader:
    """Batches (images uint8 N x H x W x C, targets float32 N x K) of a cache store (`read_into`, and `read_band`
    for crops) in the order of `batches`, read by `threads` reader threads (0: in the calling thread) a few
    batches ahead into a ring of buffers; on a CUDA `device` the batches come out already on it.

    On the CPU a batch stays valid for as long as it is referenced: the ring never refills memory that is held.
    """

    def __init__(self, store, targets: np.ndarray, batches: BatchSampler, threads: int = 2,
                 device: torch.device | str = "cpu", crops: RandomCrops | None = None):
        self.store, self.batches, self.crops = store, batches, crops
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        self.threads = max(0, int(threads))
        self.device = torch.device(device)
        self.ahead = self.threads + 1  # batches being read while one trains: each thread busy, one ready
        self._ring: list[_Buffer] = []
        self._scratch = threading.local()

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @property
    def sampler(self):
        return self.batches.sampler

    def sample_shape(self) -> tuple[int, ...]:
        height, width, channels = self.store.sample_shape
        return (self.crops.size, self.crops.size, channels) if self.crops else (height, width, channels)

    def read_batch(self, rows) -> torch.Tensor:
        """The uint8 images of `rows` in a new array, cropped as the loader crops (drawing corners)."""
        rows = [int(row) for row in rows]
        out = np.empty((len(rows), *self.sample_shape()), dtype=np.uint8)
        self._fill(out, rows, self._corners(len(rows)), None)
        return torch.from_numpy(out)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.device.type != "cuda":
            yield from self._read_ahead(cuda=False)
            return
        # As kit.data.prefetch.PrefetchLoader: batch i+1's copy is queued on the side stream before batch i is
        # handed out; the compute stream waits for it, and the caching allocator is told the compute stream uses it.
        side, compute = torch.cuda.Stream(device=self.device), torch.cuda.current_stream(self.device)
        ready = None
        for images, targets, buffer in self._read_ahead(cuda=True):
            with torch.cuda.stream(side):
                images = images.to(self.device, non_blocking=True)
                targets = targets.to(self.device, non_blocking=True)
                buffer.copied = torch.cuda.Event()
                buffer.copied.record(side)
            if ready is not None:
                yield ready
            compute.wait_stream(side)
            images.record_stream(compute)
            targets.record_stream(compute)
            ready = images, targets
        if ready is not None:
            yield ready

    def _read_ahead(self, cuda: bool) -> Iterator:
        """The batches in order, as views of their ring buffers ((images, targets), plus the buffer on CUDA),
        `ahead` batches dispatched to the readers beyond the one handed out."""
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="kit-reader") if self.threads else None
        batches = iter(self.batches)
        pending: list[tuple[Future, _Buffer, list[int]]] = []
        handed: list[_Buffer] = []  # the last two hand-outs: the consumer may still hold both

        def dispatch() -> None:
            rows = next(batches, None)
            if rows is None:
                return
            rows = [int(row) for row in rows]
            buffer = self._buffer(len(rows), cuda, busy=[*(b for _, b, _ in pending), *handed])
            work = (buffer.images[:len(rows)].numpy(), rows, self._corners(len(rows)), buffer.copied)
            if pool is None:
                future = Future()
                future.set_result(self._fill(*work))
            else:
                future = pool.submit(self._fill, *work)
            pending.append((future, buffer, rows))

        try:
            for _ in range(self.ahead):
                dispatch()
            while pending:
                future, buffer, rows = pending.pop(0)
                future.result()  # a reader's error (a truncated cache) is raised here
                handed = [*handed[-1:], buffer]
                dispatch()
                images, targets = buffer.images[:len(rows)], self.targets[rows]
                yield (images, targets, buffer) if cuda else (images, targets)
                del images, targets
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _buffer(self, count: int, pin: bool, busy: list[_Buffer]) -> _Buffer:
        """A place of the ring to fill: one that is free and not `busy` (being read, or among the last two handed
        out), else a new one. A place whose memory is still referenced elsewhere leaves the ring to its holder."""
        busy_ids = {id(b) for b in busy}
        self._ring = [b for b in self._ring if id(b) in busy_ids or b.free()]
        for buffer in self._ring:
            if id(buffer) not in busy_ids and buffer.images.shape[0] >= count:
                return buffer
        buffer = _Buffer((self.batch_size, *self.sample_shape()), pin)
        self._ring.append(buffer)
        return buffer

    def _corners(self, count: int) -> list[tuple[int, int]] | None:
        """The next `count` crop corners (drawn in the calling thread, in batch order), or None without crops."""
        return self.crops.corners(count, *self.store.sample_shape[:2]) if self.crops else None

    def _fill(self, out: np.ndarray, rows: list[int], corners, copied) -> None:
        if copied is not None:
            copied.synchronize()  # the buffer's previous batch has left for the device
        for i, row in enumerate(rows):
            if corners is None:
                self.store.read_into(row, out[i])
            else:
                top, left = corners[i]
                band = self._band(len(out[i]))
                self.store.read_band(row, top, band)
                out[i] = band[:, left:left + self.crops.size]

    def _band(self, rows: int) -> np.ndarray:
        """This thread's reused array for `rows` full-width rows of one image (the rows a crop spans)."""
        band = getattr(self._scratch, "band", None)
        if band is None or band.shape[0] != rows:
            width, channels = self.store.sample_shape[1:]
            band = self._scratch.band = np.empty((rows, width, channels), dtype=np.uint8)
        return band
