"""Several `kit tune` processes on one study: `kit tune --gpus 0,1` starts one per device, each taking trials
from the shared storage until the study holds `tune.trials` finished ones (Optuna's own distributed mode; on
several machines, run `kit tune --storage postgresql://...` on each)."""
from __future__ import annotations

import multiprocessing
import os

from kit.errors import KitError


def _worker(base, data, values, device: str, threads: int, label: str) -> None:
    if device != "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = device  # before anything touches CUDA in this process
    import torch

    from kit.tune.study import tune

    torch.set_num_threads(threads)
    try:
        tune(base, data, values, device="cpu" if device == "cpu" else "cuda",
             say=lambda line: print(f"[{label}] {line}", flush=True), report=False)
    except KitError as err:
        print(f"[{label}] error: {err}", flush=True)
        raise SystemExit(1) from None


def tune_on_devices(base, data, values: dict, devices: list[str], section: dict | None = None, say=print):
    """One tuning process per device (spawned: a forked child would inherit the parent's CUDA state); then the
    study's report (a TuneOutcome)."""
    from kit.system import available_cores

    context = multiprocessing.get_context("spawn")
    threads = max(1, available_cores() // len(devices))
    processes = [context.Process(target=_worker, name=f"kit-tune-{i}",
                                 args=(base, data, values, device, threads, f"process {i} on {device}"))
                 for i, device in enumerate(devices)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise KitError(f"{len(failed)} of {len(processes)} tuning process(es) failed (see their lines above)")
    from kit.tune.study import tune

    return tune(base, data, values, section, say=say, run_trials=False)
