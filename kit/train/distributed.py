"""Several processes on one fold: PyTorch DistributedDataParallel, started by torchrun.

    torchrun --nproc_per_node 4 -m kit train --fold 0 --model resnet34

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous; `make_runtime` sees them and returns a
`DistributedRuntime`, which the training loop uses through the same hooks as a single process: the model
wrapped in DDP, the training samples sharded (also for the balanced sampler), validation and test
predictions sharded and gathered so that every metric is computed on all of them, and files written by
rank 0 only. NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Sampler

from kit.errors import KitError
from kit.system import available_cores
from kit.train.device import Runtime, amp_dtype, check_amp, pick_device
from kit.train.sampler import DistributedWeightedSampler, ShardSampler


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Whether this process prints results: rank 0 of a torchrun job, or a lone process."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class DistributedRuntime(Runtime):
    local_world_size: int = 1
    sync_bn: bool = False

    def describe(self) -> str:
        return (f"{super().describe()}, DDP rank {self.rank}/{self.world_size} ({dist.get_backend()})"
                + (", SyncBatchNorm" if self.sync_bn else ""))

    def default_workers(self) -> int:
        return max(1, available_cores() // self.local_world_size - 1)  # one core per process feeds its GPU

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return super().prepare(model)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        # Only parameters that require gradients are synchronised: call again after (un)freezing layers.
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def train_sampler(self, num_samples: int, weights: torch.Tensor | None, generator: torch.Generator,
                      seed: int = 0) -> Sampler:
        if weights is not None:
            return DistributedWeightedSampler(weights, num_samples, self.rank, self.world_size, seed)
        return DistributedSampler(range(num_samples), self.world_size, self.rank, shuffle=True, seed=seed)

    def eval_sampler(self, num_samples: int) -> Sampler:
        return ShardSampler(num_samples, self.rank, self.world_size)

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        shards = [None] * self.world_size
        dist.all_gather_object(shards, np.asarray(rows))
        filled = max(shards, key=len)  # a rank with no samples (fewer samples than ranks) sends an empty array
        out = np.empty((sum(len(shard) for shard in shards), *filled.shape[1:]), dtype=filled.dtype)
        for rank, shard in enumerate(shards):  # ShardSampler gave rank r the samples r, r + W, r + 2W, ...
            if len(shard):
                out[rank::self.world_size] = shard
        return out

    def set_epoch(self, sampler: Sampler | None, epoch: int) -> None:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def no_sync(self, model: torch.nn.Module, sync: bool):
        if sync or not isinstance(model, DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()

    def reduce_sum(self, value: float) -> float:
        tensor = torch.tensor([float(value)], dtype=torch.float64,
                              device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(tensor)
        return float(tensor.item())

    def sync_buffers(self, model: torch.nn.Module) -> None:
        # Each rank's BatchNorm statistics moved with its own last batches; best.pt will hold rank 0's.
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)

    def barrier(self) -> None:
        dist.barrier()


def make_distributed_runtime(device: str = "auto", amp: str = "auto", sync_bn: bool = False) -> DistributedRuntime:
    """Join torchrun's process group (once per process) and pick this rank's device: cuda:LOCAL_RANK on GPUs."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device in ("auto", "cuda") and torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise KitError(f"LOCAL_RANK {local_rank}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                           "give torchrun --nproc_per_node at most that many")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif device.startswith("cuda:"):
        raise KitError(f"--device {device}: under torchrun each process takes cuda:LOCAL_RANK; give --device cuda")
    else:
        dev = pick_device("cpu" if device == "auto" else device)
    if dev.type not in ("cuda", "cpu"):
        raise KitError(f"--device {dev}: DDP runs on CUDA (NCCL) or the CPU (gloo)")
    if sync_bn and dev.type != "cuda":
        raise KitError("--sync-bn: torch's SyncBatchNorm runs on CUDA devices only; drop it on CPU")
    check_amp(dev, amp)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None)
        atexit.register(_leave)
    return DistributedRuntime(
        device=dev, dtype=amp_dtype(dev, amp), channels_last=dev.type == "cuda", rank=dist.get_rank(),
        world_size=dist.get_world_size(), local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        sync_bn=sync_bn,
    )


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def make_runtime(device: str = "auto", amp: str = "auto", sync_bn: bool = False) -> Runtime:
    """This process's runtime: a DistributedRuntime when torchrun started several processes, else one device."""
    if launched_by_torchrun():
        return make_distributed_runtime(device, amp, sync_bn)
    if sync_bn:
        raise KitError("--sync-bn synchronises BatchNorm across processes: start the run with torchrun")
    dev = pick_device(device)
    check_amp(dev, amp)
    return Runtime(device=dev, dtype=amp_dtype(dev, amp), channels_last=dev.type == "cuda")
