"""GPU throughput: `kit train`'s loop against a bare PyTorch loop on the same data, and a plain fp32 loop.

Three loops train the same model from the same random weights on the same batches of `kit synth` images,
already collated in pinned memory (so the loops are measured, not decoding): `kit.train.loop.train_one_epoch`
with the runtime `kit train` picks on CUDA (`--amp auto`: bf16 autocast where the GPU computes it natively, else
fp16 with a loss scaler; channels_last; cuDNN autotuning), a bare loop with the same autocast and memory format (AdamW, BCE, backward,
step), and a plain fp32 loop (contiguous memory, no autocast). Epochs of the three alternate after a warm-up
epoch each; the median images/s is reported with the peak GPU memory. On a GPU the kit loop also runs forced
to `--amp fp16` (+ GradScaler), as a T4 or P100 gets it, to set against bf16 on the same card (and forced to
bf16 where auto is fp16).

Usage: python scripts/bench_gpu.py [--model resnet34] [--size 512] [--batch-size 32] [--steps 24] [--repeats 3]
                                   [--json FILE]
       python scripts/bench_gpu.py --cpu-smoke   # test_resnet at 32 px on the CPU: checks the script, not speed
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synth_images(count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images of `kit synth` at `size` px (N x S x S x C uint8) and their 0/1 labels."""
    from kit.data.cache import open_store
    from kit.data.reading import CompetitionData, labels_to_matrix
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset
    from kit.system import available_cores

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root, HPA, n_train=count, n_test=1, size=size, seed=0, workers=min(8, available_cores()))
        data = CompetitionData(root, HPA)
        labels = data.train_labels()
        store = open_store(data, "train", size, labels["Id"].tolist())
        images = np.stack([store.read(i) for i in range(len(store))])
        targets = labels_to_matrix(labels["labels"].tolist(), HPA.num_classes).astype(np.float32)
    return images, targets


def make_batches(images, targets, batch_size: int, steps: int, pin: bool):
    """`steps` batches of uint8 N x C x H x W images and float targets, cycling over the images."""
    import torch

    chw = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(targets)
    batches = []
    for step in range(steps):
        rows = torch.arange(step * batch_size, (step + 1) * batch_size) % len(chw)
        batch = (chw[rows].contiguous(), labels[rows].contiguous())
        batches.append(tuple(t.pin_memory() for t in batch) if pin else batch)
    return batches


class Timer:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


class KitLoop:
    """One epoch of `kit.train.loop.train_one_epoch`, set up as `train_fold` sets it up."""

    def __init__(self, settings, spec, start_state, targets, device: str, amp: str = "auto",
                 name: str = "kit train loop"):
        import torch

        from kit.train.distributed import make_runtime
        from kit.train.loop import make_scheduler, param_groups
        from kit.train.losses import make_loss
        from kit.train.models import build_model

        self.name = name
        self.runtime = make_runtime(device, amp)
        model, _ = build_model(settings, spec)
        model.load_state_dict(start_state)
        self.model = self.runtime.prepare(model)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, settings), lr=settings.lr)
        self.scheduler = make_scheduler(self.optimizer, settings, steps_per_epoch=10_000)  # stays near its peak
        self.scaler = self.runtime.grad_scaler()
        self.loss_fn = make_loss(settings.loss, targets).to(self.runtime.device)
        self.precision = self.runtime.describe()

    def epoch(self, batches, mean, std) -> None:
        from kit.train.loop import train_one_epoch

        train_one_epoch(self.model, batches, self.optimizer, self.scheduler, self.loss_fn, self.runtime, self.scaler,
                        mean, std, progress=False)


class BareLoop:
    """What one would write by hand: AdamW, BCE, backward, step; optionally autocast and channels_last."""

    def __init__(self, settings, spec, start_state, device: str, amp_dtype, channels_last: bool, name: str):
        import torch

        from kit.train.models import build_model

        self.name, self.dtype, self.channels_last = name, amp_dtype, channels_last
        self.device = torch.device(device)
        model, _ = build_model(settings, spec)
        model.load_state_dict(start_state)
        self.model = model.to(self.device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp_dtype == torch.float16)
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
        self.precision = f"{self.device.type} {precision}" + (", channels_last" if channels_last else "")

    def epoch(self, batches, mean, std) -> None:
        import torch
        import torch.nn.functional as F

        mean_t = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.model.train()
        for images, targets in batches:
            x = (images.to(self.device, non_blocking=True).float() / 255.0 - mean_t) / std_t
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = targets.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                logits = self.model(x)
            loss = F.binary_cross_entropy_with_logits(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if not torch.isfinite(loss):
            raise RuntimeError(f"{self.name}: the loss became {loss.item()}")


def run(args) -> dict:
    import torch

    from kit.data.spec import HPA
    from kit.settings import resolve_settings
    from kit.train.device import amp_dtype, pick_device
    from kit.train.models import build_model

    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as kit's runtime sets it, for every loop alike
    started = time.perf_counter()
    images, targets = synth_images(args.images, args.size)
    synth_seconds = time.perf_counter() - started
    (settings,) = resolve_settings({}, {"model": args.model, "pretrained": "none", "lr": 1e-4, "epochs": 1,
                                        "size": args.size, "batch_size": args.batch_size, "device": str(device)})
    start_state = {k: v.clone() for k, v in build_model(settings, HPA)[0].state_dict().items()}
    batches = make_batches(images, targets, args.batch_size, args.steps, pin=device.type == "cuda")
    mean = [float(m) for m in images.reshape(-1, images.shape[-1]).mean(0) / 255]
    std = [float(s) for s in images.reshape(-1, images.shape[-1]).std(0) / 255]
    amp = amp_dtype(device, "auto")
    on_gpu = device.type == "cuda"
    loops = [KitLoop(settings, HPA, start_state, targets, str(device)),
             BareLoop(settings, HPA, start_state, str(device), amp, on_gpu, "bare PyTorch loop"),
             BareLoop(settings, HPA, start_state, str(device), None, False, "plain fp32 loop")]
    if on_gpu:  # what --amp auto gives a T4 or P100 (fp16 + GradScaler), against this card's own choice
        loops.append(KitLoop(settings, HPA, start_state, targets, str(device), "fp16", "kit loop --amp fp16"))
        if amp != torch.bfloat16:
            loops.append(KitLoop(settings, HPA, start_state, targets, str(device), "bf16", "kit loop --amp bf16"))
    rates = {loop.name: [] for loop in loops}
    peaks = {}
    for repeat in range(args.repeats + 1):  # round 0 warms up (cuDNN autotuning, allocator pools)
        order = loops if repeat % 2 == 0 else loops[::-1]
        for loop in order:
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(device)
            with Timer(device) as timer:
                loop.epoch(batches, mean, std)
            if on_gpu:
                peaks[loop.name] = torch.cuda.max_memory_allocated(device) / 2**30
            if repeat:
                rates[loop.name].append(args.steps * args.batch_size / timer.seconds)
    name = torch.cuda.get_device_name(device) if on_gpu else "CPU"
    result = {"device": name, "model": args.model, "size": args.size, "batch_size": args.batch_size,
              "steps": args.steps, "repeats": args.repeats, "synth_seconds": round(synth_seconds, 1),
              "torch": torch.__version__, "loops": []}
    bare = statistics.median(rates["bare PyTorch loop"])
    for loop in loops:
        median = statistics.median(rates[loop.name])
        result["loops"].append({"loop": loop.name, "precision": loop.precision, "images_per_s": round(median, 1),
                                "all": [round(r, 1) for r in rates[loop.name]], "vs_bare": round(median / bare, 3),
                                "peak_gib": round(peaks.get(loop.name, 0.0), 2)})
    return result


def table(result: dict) -> str:
    lines = [f"{result['model']} at {result['size']} px, batch {result['batch_size']}, {result['steps']} steps x "
             f"{result['repeats']} epochs per loop (median), random weights, kit synth images; {result['device']}, "
             f"torch {result['torch']}",
             f"{'loop':<18} {'precision':<26} {'images/s':>9} {'vs bare':>8} {'peak GiB':>9}"]
    for loop in result["loops"]:
        lines.append(f"{loop['loop']:<18} {loop['precision']:<26} {loop['images_per_s']:>9.1f} "
                     f"{loop['vs_bare']:>8.3f} {loop['peak_gib']:>9.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet34")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=64, help="distinct kit synth images (batches cycle over them)")
    parser.add_argument("--steps", type=int, default=24, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loop")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here as JSON")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny run on the CPU (test_resnet, 32 px) to check that the script works")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        args.model, args.size, args.batch_size, args.images, args.steps, args.repeats, args.device = (
            "test_resnet", 32, 4, 8, 2, 1, "cpu")
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
