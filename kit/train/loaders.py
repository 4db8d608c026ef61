"""The training run's loaders, on one of two paths (`--augment-on`):

- workers: albumentations augments each sample in the DataLoader workers (uint8, C x H x W), the step
  normalises on the device (`kit.data.loader.to_model_input`);
- batch: only reading happens off the device: reader threads fill a ring of reused pinned batch buffers from the
  cache (`kit.data.ring`; worker processes when images are decoded from their files), or the batches are gathered
  from the images held on the GPU (`--cache-device gpu`); then `kit.data.gpu_augment.BatchAugmenter`
  augments and normalises the whole batch on the training device, each sample with its own parameters.

On CUDA the batches are copied ahead on a side stream (`kit.data.prefetch`). `Loaders.to_input(images)` turns
what the train loader yields into the model's input on either path; `Loaders.transform` is what each epoch
reseeds (and last.pt saves the generator of, on the batch path).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from kit.data.augment import build_transform
from kit.data.device_cache import DeviceBatches, DeviceImages, fits
from kit.data.gpu_augment import BatchAugmenter, batch_ops, describe
from kit.data.loader import ImageDataset, RawBatches, batch_as_is, make_loader, to_model_input
from kit.data.prefetch import prefetched
from kit.data.reading import ImageStore
from kit.data.ring import RandomCrops, RingLoader, batch_order
from kit.errors import KitError
from kit.train.device import Runtime
from kit.train.predict import eval_loader
from kit.train.sampler import balanced_weights


@dataclass
class TrainPath:
    """Where this run augments and holds its training images, and the note for the run's first line."""

    augment_on: str  # "batch" or "workers"
    cache_device: str  # "gpu" (the training device) or "cpu"
    threads: bool  # the batch path reads a cache with threads (kit.data.ring), not worker processes
    ops: list | None
    note: str


def train_path(settings, runtime: Runtime, store: ImageStore) -> TrainPath:
    """--augment-on and --cache-device resolved for this device and pipeline (see the settings' help)."""
    ops, why = batch_ops(settings.augment)
    cuda = runtime.device.type == "cuda"
    batch = settings.augment_on == "batch" or settings.augment_on == "auto" and cuda
    fallback = ""
    if batch and ops is None:
        batch, fallback = False, f"; {why}: augmenting in the workers (--augment-on {settings.augment_on})"
    if settings.cache_device == "gpu" and not batch:
        reason = why if ops is None else f"--augment-on {settings.augment_on} augments in the workers on {runtime.device}"
        raise KitError(f"--cache-device gpu needs the batch path (--augment-on batch): {reason}")
    on_device = settings.cache_device == "gpu" or settings.cache_device == "auto" and batch and cuda \
        and hasattr(store, "read_into") and fits(store, runtime.device)
    if not batch:
        return TrainPath("workers", "cpu", False, None, "augment in the workers" + fallback)
    threads = not on_device and hasattr(store, "read_band")  # a cache (kit.data.cache.CacheStore)
    where = f"images on {runtime.device}" if on_device else "threads read the cache" if threads else \
        "workers read only"
    return TrainPath("batch", "gpu" if on_device else "cpu", threads, ops,
                     f"augment on {runtime.device} per batch ({describe(ops)}; {where})")


class BatchPath:
    """The batch path's random parts as one object: the device augmenter and the workers' crop. `seed_epoch`
    reseeds both; its generator state goes into last.pt. Calling it makes a uint8 batch the model's input."""

    def __init__(self, augmenter: BatchAugmenter, crop, device: torch.device):
        self.augmenter, self.crop, self.device = augmenter, crop, device

    def set_random_seed(self, seed: int) -> None:
        self.augmenter.set_random_seed(seed)
        if self.crop is not None:
            self.crop.set_random_seed(seed)

    def generator_state(self) -> torch.Tensor:
        return self.augmenter.generator_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        self.augmenter.set_generator_state(state)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.augmenter(images.to(self.device, non_blocking=True))


@dataclass
class Loaders:
    train: object  # batches of (images, targets): a DataLoader, prefetched on CUDA, or DeviceBatches
    val: torch.utils.data.DataLoader
    generator: torch.Generator  # drives shuffling (or the balanced sampler) and the workers' seeds
    transform: object | None  # the albumentations pipeline or the BatchPath, reseeded every epoch
    sampler: torch.utils.data.Sampler | None
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None  # a train batch's images -> the model's input
    path: TrainPath | None = None


def make_loaders(settings, split, train_store: ImageStore, val_store: ImageStore, runtime: Runtime,
                 path: TrainPath | None = None) -> Loaders:
    path = path or train_path(settings, runtime, train_store)
    generator = torch.Generator()
    weights = balanced_weights(split.train_targets, settings.sampler_power) if settings.sampler == "balanced" else None
    sampler = runtime.train_sampler(len(train_store), weights, generator, settings.seed)
    workers = runtime.loader_workers(settings.workers)
    drop_last = len(train_store) // runtime.world_size > settings.batch_size
    val = eval_loader(ImageDataset(val_store, split.val_targets), runtime, settings.batch_size, workers)
    if path.augment_on == "workers":
        transform = build_transform(settings.augment, settings.crop, seed=settings.seed, source="train.augment")
        train = make_loader(ImageDataset(train_store, split.train_targets, transform), settings.batch_size,
                            shuffle=True, sampler=sampler, workers=workers, pin_memory=runtime.pin_memory,
                            drop_last=drop_last, generator=generator)
        to_input = functools.partial(to_model_input, device=runtime.device, mean=settings.mean, std=settings.std,
                                     channels_last=runtime.channels_last)
        return Loaders(prefetched(train, runtime.device), val, generator, transform, sampler, to_input, path)
    augmenter = BatchAugmenter(path.ops, settings.mean, settings.std, settings.seed, runtime.dtype,
                               runtime.channels_last)
    if path.cache_device == "gpu":
        images = DeviceImages.load(train_store, split.train_targets, runtime.device, settings.progress)
        batch_path = BatchPath(augmenter, None, runtime.device)
        train = DeviceBatches(images, settings.batch_size, generator, sampler, drop_last, settings.crop,
                              augmenter.generator)
    elif path.threads:  # a cache: reader threads fill a ring of reused (pinned) buffers
        crops = RandomCrops(settings.crop, settings.seed) if settings.crop else None
        batch_path = BatchPath(augmenter, crops, runtime.device)
        order = batch_order(len(train_store), settings.batch_size, generator, sampler, drop_last)
        train = RingLoader(train_store, split.train_targets, order, workers, runtime.device, crops)
    else:  # decoding image files: in worker processes, as decoders may hold the GIL
        crop = build_transform([], settings.crop, seed=settings.seed) if settings.crop else None
        batch_path = BatchPath(augmenter, crop, runtime.device)
        train = prefetched(make_loader(RawBatches(train_store, split.train_targets, crop), settings.batch_size,
                                       shuffle=True, sampler=sampler, workers=workers,
                                       pin_memory=runtime.pin_memory, drop_last=drop_last, generator=generator,
                                       collate_fn=batch_as_is), runtime.device)
    return Loaders(train, val, generator, batch_path, sampler, batch_path, path)
