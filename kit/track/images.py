"""The grid of augmented training images: what the model sees (the epoch's augmentation, at the training size),
brought back from the normalised input to 0..1 so a person can look at it. Mixup/cutmix, which mix whole batches
on the device, are not drawn."""
from __future__ import annotations

import torch

GRID_IMAGES = 16


def augmented_grid(loaders, trainee, settings, count: int = GRID_IMAGES) -> torch.Tensor:
    """3 x H x W float in 0..1: `count` training images through the epoch's augmentation, de-normalised.

    Images with 3 or more channels show their first three as RGB; fewer show the first as gray. The
    augmentation is reseeded at the start of every epoch, so drawing these does not change training.
    """
    from torchvision.utils import make_grid

    from kit.data.loader import to_model_input

    def picks(total: int) -> torch.Tensor:
        return torch.randperm(total, generator=torch.Generator().manual_seed(settings.seed))[:count]

    batch_path = loaders.path is not None and loaders.path.augment_on == "batch"
    if batch_path and loaders.path.cache_device == "gpu":
        held = loaders.train.data.images  # kit.data.device_cache.DeviceBatches: uint8 N x H x W x C there
        images = held.index_select(0, picks(len(held)).to(held.device))
    elif hasattr(loaders.train, "read_batch"):  # kit.data.ring.RingLoader: read (and cropped) as in training
        images = loaders.train.read_batch(picks(len(loaders.train.store)).tolist())
    else:
        dataset = loaders.train.dataset
        images = torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in picks(len(dataset))])
    if batch_path:  # uint8 N x H x W x C: the batch augmenter augments and normalises it on the device
        images = loaders.to_input(images).float().cpu()
    else:
        images = to_model_input(images, torch.device("cpu"), settings.mean, settings.std)
    mean = torch.tensor(settings.mean).view(1, -1, 1, 1)
    std = torch.tensor(settings.std).view(1, -1, 1, 1)
    images = (images * std + mean).clamp(0, 1)
    images = images[:, :3] if images.shape[1] >= 3 else images[:, :1].expand(-1, 3, -1, -1)
    return make_grid(images, nrow=4, padding=2, pad_value=1.0)
