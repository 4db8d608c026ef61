"""Where training runs: the device, mixed precision, and the hooks a distributed (torchrun/DDP) layer replaces.

Everything in the training loop that depends on the hardware or on the number of processes goes through a
`Runtime`, so a DDP layer can subclass it (wrap the model, shard the sampler, sync only on the last
accumulation step, write files from rank 0 only) without touching the loop.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler, WeightedRandomSampler

from kit.errors import KitError
from kit.system import available_cores


def pick_device(name: str = "auto") -> torch.device:
    """'auto': cuda, then mps, then cpu; otherwise the named torch device (which must be available)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KitError(f"--device {name!r}: not a torch device (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KitError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise KitError(f"--device {name}: MPS is not available on this machine")
    return device


NATIVE_BF16 = (8, 0)  # compute capability from which CUDA GPUs compute bf16 natively (Ampere: A100, A10, L4, H100)


def native_bf16(device: torch.device) -> bool:
    """Whether this CUDA GPU computes bf16 in hardware. Not `torch.cuda.is_bf16_supported()`: that also says
    yes where bf16 is only emulated (a T4 is 7.5, a P100 6.0), where convolutions have no bf16 kernels."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    return tuple(torch.cuda.get_device_capability(index)) >= NATIVE_BF16


def amp_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype: 'auto' = bf16 on CUDA GPUs that compute it natively (compute capability 8.0 and up),
    else fp16 (with a GradScaler, see `Runtime.grad_scaler`); no autocast elsewhere."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def run_precision(device: torch.device, amp: str) -> str:
    """A trained run's --amp where this device has it (`kit predict`, `kit infer`): as trained on CUDA (auto
    choosing by the GPU at hand), fp16 falls back to fp32 on a CPU."""
    if device.type == "cuda":
        return amp
    return "bf16" if amp == "bf16" else "off"


@dataclass
class Runtime:
    """One process's view of the hardware. Single process here; a DDP layer overrides the hook methods."""

    device: torch.device
    dtype: torch.dtype | None = None  # autocast dtype, None = full precision
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> str:
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return f"{self.device} {precision}" + (", channels_last" if self.channels_last else "")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled only for fp16 (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    # ---- hooks for the distributed layer (kit.train.distributed.DistributedRuntime overrides them)

    def default_workers(self) -> int:
        """DataLoader workers when none are given: the cores this process may use, less the one the main process
        needs to feed the model (a Kaggle notebook's 2 cores: 1 worker; more would oversubscribe them)."""
        return max(1, available_cores() - 1)

    def loader_workers(self, requested: int | None) -> int:
        return self.default_workers() if requested is None else requested

    def describe_workers(self, requested: int | None) -> str:
        """'1 loader worker (default for 2 cores)' / '4 loader workers' for the run's first line."""
        workers = self.loader_workers(requested)
        chosen = f" (default for {available_cores()} cores)" if requested is None else ""
        return f"{workers} loader worker{'s' if workers != 1 else ''}{chosen}"

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls (DDP wraps it); parameters and checkpoints use the bare model."""
        return model

    def train_sampler(self, num_samples: int, weights: torch.Tensor | None, generator: torch.Generator,
                      seed: int = 0) -> Sampler | None:
        """None means shuffle with the loader's generator; weights give a balanced (with replacement) sampler."""
        if weights is None:
            return None
        return WeightedRandomSampler(weights, num_samples=num_samples, replacement=True, generator=generator)

    def eval_sampler(self, num_samples: int) -> Sampler | None:
        """The samples this process predicts (all of them here; `gather_rows` puts the shards back together)."""
        return None

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        """Every process's predictions of its `eval_sampler` shard, in sample order."""
        return rows

    def set_epoch(self, sampler: Sampler | None, epoch: int) -> None:
        """DistributedSampler needs the epoch to shuffle differently each epoch; nothing to do here."""

    def no_sync(self, model: torch.nn.Module, sync: bool):
        """Context for a micro-batch's backward: DDP skips the gradient all-reduce until the step's last one."""
        return contextlib.nullcontext()

    def reduce_sum(self, value: float) -> float:
        """Sum of a number over processes."""
        return value

    def reduce_mean(self, value: float) -> float:
        """Mean of a number over processes (the epoch's train loss)."""
        return self.reduce_sum(value) / self.world_size

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm running statistics) before it predicts."""

    def barrier(self) -> None:
        """Wait until every process gets here (before reading a file that rank 0 writes)."""


def check_amp(device: torch.device, amp: str) -> None:
    if device.type == "cpu" and amp == "fp16":
        raise KitError("--amp fp16 needs a GPU; use bf16 or off on CPU")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed image sizes: let cuDNN pick the fastest kernels once
