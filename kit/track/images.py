"""The grid of augmented training images: what the model sees (augmentation, then mixup/cutmix where on),
brought back from the normalised input to 0..1 so a person can look at it."""
from __future__ import annotations

import torch

GRID_IMAGES = 16


def augmented_grid(loaders, trainee, settings, count: int = GRID_IMAGES) -> torch.Tensor:
    """3 x H x W float in 0..1: `count` training images through the epoch's augmentation (and mixer), de-normalised.

    Images with 3 or more channels show their first three as RGB; fewer show the first as gray. The
    augmentation and mixer are reseeded at the start of every epoch, so drawing these does not change training.
    """
    from torchvision.utils import make_grid

    from kit.data.loader import to_model_input

    dataset = loaders.train.dataset
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(settings.seed))[:count]
    images, targets = zip(*(dataset[int(i)] for i in picks))
    images = to_model_input(torch.stack(images), torch.device("cpu"), settings.mean, settings.std)
    mixer = getattr(trainee, "mixer", None)
    if mixer is not None:
        images, _ = mixer(images, torch.stack(targets))
    mean = torch.tensor(settings.mean).view(1, -1, 1, 1)
    std = torch.tensor(settings.std).view(1, -1, 1, 1)
    images = (images * std + mean).clamp(0, 1)
    images = images[:, :3] if images.shape[1] >= 3 else images[:, :1].expand(-1, 3, -1, -1)
    return make_grid(images, nrow=4, padding=2, pad_value=1.0)
