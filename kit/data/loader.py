"""The streaming loader: a Dataset over an `ImageStore`, augmentation on uint8, normalisation last.

Samples stay uint8 through augmentation and collation (4x less to copy than float32); `to_model_input`
converts a batch to float and normalises it on the target device (the GPU when there is one).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from kit.data.reading import ImageStore


def hwc_to_chw(image: np.ndarray) -> np.ndarray:
    """H x W x C -> a contiguous C x H x W copy, fast also for the flipped/rotated views augmentation returns.

    numpy copies a transposed uint8 view byte by byte (~1 ns each: 0.4 ms for 256 x 256 x 4, more than reading
    the sample from the cache); copying whole pixels as C-byte records, then splitting planes with OpenCV,
    is 2-3x faster.
    """
    h, w, c = image.shape
    if image.dtype != np.uint8 or c > 512:  # OpenCV's channel limit
        return np.ascontiguousarray(image.transpose(2, 0, 1))
    if not image.flags.c_contiguous:
        if image.strides[2] == 1:
            pixels = image.view(np.dtype((np.void, c)))[..., 0]
            image = np.ascontiguousarray(pixels).view(np.uint8).reshape(h, w, c)
        else:
            image = np.ascontiguousarray(image)
    out = np.empty((c, h, w), dtype=np.uint8)
    if c == 1:
        out[0] = image[..., 0]
    else:
        cv2.split(image, list(out))
    return out


class ImageDataset(Dataset):
    """(image CxHxW uint8 tensor, target float32 vector or empty tensor) per index of an ImageStore.

    `transform` is an albumentations pipeline (or any callable `image=HxWxC uint8 -> {'image': ...}`).
    Nothing is held in memory beyond one sample: pixels are read from the store on each access.
    """

    def __init__(self, store: ImageStore, targets: np.ndarray | None = None, transform: Callable | None = None,
                 indices: Sequence[int] | None = None):
        self.store = store
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        self.transform = transform
        self.indices = np.arange(len(store)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        index = int(self.indices[item])
        image = self.store.read(index)
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        image = torch.from_numpy(hwc_to_chw(image))
        target = torch.from_numpy(self.targets[index]) if self.targets is not None else torch.empty(0)
        return image, target


class RawBatches(Dataset):
    """Whole batches of uint8 N x H x W x C images read straight from an ImageStore into one array, cut to a
    random crop by `crop` (an albumentations RandomCrop) if given, and nothing else: the batch path, where
    `kit.data.gpu_augment` augments on the training device. The HWC layout is kept: on the device it is the
    channels_last layout of N x C x H x W, so no worker transposes pixels.

    The DataLoader hands `__getitems__` a batch's indices (use `collate_fn=batch_as_is`); in a worker the
    array is allocated in shared memory, as torch's default collate does, so it crosses to the main process
    without a copy."""

    def __init__(self, store: ImageStore, targets: np.ndarray, crop: Callable | None = None,
                 indices: Sequence[int] | None = None):
        self.store, self.crop = store, crop
        self.targets = np.asarray(targets, dtype=np.float32)
        self.indices = np.arange(len(store)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        images, targets = self.__getitems__([item])
        return images[0], targets[0]

    def __getitems__(self, items: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [int(self.indices[i]) for i in items]
        first = self._read(rows[0])
        shape = (len(rows), *first.shape)
        if torch.utils.data.get_worker_info() is not None:
            storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
            images = torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)
        else:
            images = torch.empty(shape, dtype=torch.uint8)
        out = images.numpy()
        out[0] = first
        for i, row in enumerate(rows[1:], 1):
            self._read(row, out[i])
        return images, torch.from_numpy(self.targets[rows])

    def _read(self, row: int, out: np.ndarray | None = None) -> np.ndarray:
        if self.crop is None and out is not None and hasattr(self.store, "read_into"):
            return self.store.read_into(row, out)  # straight into the batch: no copy
        image = self.store.read(row)
        if self.crop is not None:
            image = self.crop(image=image)["image"]
        if out is not None:
            out[...] = image
        return image


def batch_as_is(batch):
    """collate_fn for RawBatches: `__getitems__` already made the batch."""
    return batch


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, sampler: Sampler | None = None,
                workers: int = 0, pin_memory: bool = False, drop_last: bool = False, seed: int | None = None,
                generator: torch.Generator | None = None, collate_fn: Callable | None = None) -> DataLoader:
    """A DataLoader whose shuffling (and workers' seeds) come from `generator`, or from a new one seeded `seed`."""
    if generator is None and seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, num_workers=workers,
        pin_memory=pin_memory, drop_last=drop_last, persistent_workers=False, generator=generator,
        worker_init_fn=_seed_worker if workers else None, collate_fn=collate_fn,
    )


def _seed_worker(worker_id: int) -> None:
    # Give each worker its own random stream derived from torch's per-worker seed: numpy's and Python's
    # global ones, and the albumentations pipeline's own (a Compose draws from its private generator).
    import random
    import signal

    # Ctrl-C and a session's SIGTERM reach the whole process group: the main process saves and stops
    # (kit.train.budget) and ends its workers; a worker that died first would fail the loader instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset if info is not None else None
    transform = getattr(dataset, "transform", None) or getattr(dataset, "crop", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


@functools.lru_cache(maxsize=16)
def _channel_tensor(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """Per-channel statistics as a 1 x C x 1 x 1 float32 tensor on `device`, made once: a copy from a Python list
    to the GPU on every batch would make each step wait for the GPU."""
    return torch.as_tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


def to_model_input(images: torch.Tensor, device: torch.device, mean: Sequence[float], std: Sequence[float],
                   channels_last: bool = False) -> torch.Tensor:
    """uint8 N x C x H x W -> normalised float32 on `device` (copied non-blocking, converted there)."""
    images = images.to(device, non_blocking=True).float().div_(255.0)
    images = images.sub_(_channel_tensor(tuple(mean), device)).div_(_channel_tensor(tuple(std), device))
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images
