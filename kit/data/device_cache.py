"""The training images held on the GPU (`--cache-device gpu`): read from the store once, batches gathered there.

`DeviceImages.load(store, device)` copies every sample (uint8 N x H x W x C, as the cache holds them) to the device
in chunks; `DeviceBatches` then iterates batches of it in the order of a sampler, as a DataLoader would, with no
worker and no host-to-device copy. Random crops (--crop) are cut on the device with offsets drawn from the batch
augmenter's generator, so the run keeps one random stream.
`fits(store, device)` says whether the set takes under `FREE_SHARE` of the device's free memory (`auto`).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler
from tqdm.auto import tqdm

from kit.data.ring import batch_order

FREE_SHARE = 0.4  # --cache-device auto: on the GPU when the images take under this share of its free memory
CHUNK = 64  # samples read and copied at a time


def sample_bytes(store) -> int:
    return int(np.prod(store.read(0).shape)) if len(store) else 0


def fits(store, device: torch.device, share: float = FREE_SHARE) -> bool:
    """Whether the store's pixels take less than `share` of `device`'s free memory (False off CUDA)."""
    device = torch.device(device)
    if device.type != "cuda" or not len(store):
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return len(store) * sample_bytes(store) < share * free


class DeviceImages:
    """uint8 N x H x W x C pixels and float32 targets of a store, on one device."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor):
        self.images, self.targets = images, targets

    @classmethod
    def load(cls, store, targets: np.ndarray, device: torch.device, progress: bool = True) -> DeviceImages:
        first = store.read(0)
        images = torch.empty((len(store), *first.shape), dtype=torch.uint8, device=device)
        staging = torch.empty((CHUNK, *first.shape), dtype=torch.uint8, pin_memory=torch.device(device).type == "cuda")
        for start in tqdm(range(0, len(store), CHUNK), desc="images to the GPU", leave=False, disable=not progress):
            count = min(CHUNK, len(store) - start)
            for i in range(count):
                staging[i].numpy()[...] = store.read(start + i)
            images[start:start + count].copy_(staging[:count])  # the staging buffer is reused: a blocking copy
        return cls(images, torch.as_tensor(np.asarray(targets, dtype=np.float32)).to(device))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def nbytes(self) -> int:
        return self.images.numel()


class DeviceBatches:
    """Batches (images N x H x W x C uint8, targets) gathered on the device in the order of `sampler` (or a
    shuffle by `generator`); `crop` cuts a random crop x crop window per sample, offsets from `crop_generator`."""

    def __init__(self, data: DeviceImages, batch_size: int, generator: torch.Generator,
                 sampler: Sampler | None = None, drop_last: bool = False, crop: int | None = None,
                 crop_generator: torch.Generator | None = None):
        self.data, self.crop, self.crop_generator = data, crop, crop_generator
        self.batches = batch_order(len(data), batch_size, generator, sampler, drop_last)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.data.images.device
        for indices in self.batches:
            index = torch.as_tensor(indices, dtype=torch.long).to(device, non_blocking=True)
            images = self.data.images.index_select(0, index)
            if self.crop:
                images = self._cropped(images)
            yield images, self.data.targets.index_select(0, index)

    def _cropped(self, images: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = images.shape
        c = self.crop
        ys = torch.randint(0, h - c + 1, (n,), generator=self.crop_generator).tolist()
        xs = torch.randint(0, w - c + 1, (n,), generator=self.crop_generator).tolist()
        return torch.stack([images[i, y:y + c, x:x + c] for i, (y, x) in enumerate(zip(ys, xs))])
