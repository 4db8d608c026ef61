"""A loader wrapper that copies the next batch to the GPU on a side CUDA stream while the current one trains.

As timm's `PrefetchLoader` (timm/data/loader.py): the host-to-device copy of batch i+1 is queued on its own stream
(non-blocking, from pinned memory) before batch i is handed out; the compute stream waits for the copy stream
(`wait_stream`) before it uses a batch, and each tensor is `record_stream`ed on the compute stream so the caching
allocator does not give its memory back to the side stream while the step still reads it. Unlike timm's, it
copies only: augmentation and normalisation stay on the compute stream in the step, so the augmenter's random
draws happen in step order (and a checkpoint between steps holds the generator state of the next step).

On any other device it is a plain pass-through: the batches as the loader gives them.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def _to(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return type(batch)(_to(item, device) for item in batch)


def _record(batch, stream) -> None:
    if isinstance(batch, torch.Tensor):
        batch.record_stream(stream)
    else:
        for item in batch:
            _record(item, stream)


class PrefetchLoader:
    """Iterates `loader`'s batches (tensors, or tuples/lists of them) already on `device`, one copied ahead."""

    def __init__(self, loader: Iterable, device: torch.device):
        self.loader = loader
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):  # sampler, batch_size, dataset...: the wrapped loader's
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator:
        if self.device.type != "cuda":
            yield from self.loader
            return
        stream = torch.cuda.Stream(device=self.device)
        pending = None
        for batch in self.loader:
            with torch.cuda.stream(stream):
                copied = _to(batch, self.device)
            if pending is not None:
                yield pending
            torch.cuda.current_stream(self.device).wait_stream(stream)
            _record(copied, torch.cuda.current_stream(self.device))
            pending = copied
        if pending is not None:
            yield pending


def prefetched(loader: Iterable, device: torch.device) -> Iterable:
    """`loader` wrapped in a PrefetchLoader on CUDA; `loader` itself elsewhere."""
    return PrefetchLoader(loader, device) if torch.device(device).type == "cuda" else loader
