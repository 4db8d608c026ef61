"""Folds fanned out over devices: `kit train --fold all --gpus 0,1,2,3`.

Every (model, fold) run is one process on one device, started when a device is free; no other scheduling.
Each process sees only its own GPU (CUDA_VISIBLE_DEVICES) and writes its log to the run folder's train.log;
the parent shows one progress bar per run. A run that fails is reported and the others go on.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from kit.data.reading import CompetitionData
from kit.errors import KitError
from kit.layout import FoldRun
from kit.score.metrics import history_metric
from kit.settings import Settings
from kit.system import available_cores  # not kit.train.device: torch must load after CUDA_VISIBLE_DEVICES is set


@dataclass
class RunOutcome:
    model: str
    fold: int
    device: str
    out_dir: Path
    ok: bool = False
    best_epoch: int = 0
    best_score: float = float("nan")
    seconds: float = 0.0
    error: str = ""


def parse_devices(value: str) -> list[str]:
    """'0,1,3' -> CUDA device numbers; 'cpu,cpu' -> CPU processes (for machines without GPUs, and tests)."""
    import torch

    devices = [part.strip() for part in str(value).split(",") if part.strip()]
    if not devices:
        raise KitError(f"--gpus {value!r}: expected device numbers such as 0,1,2,3 (or cpu,cpu)")
    for device in devices:
        if device == "cpu":
            continue
        if not device.isdigit():
            raise KitError(f"--gpus {value}: {device!r} is neither a CUDA device number nor 'cpu'")
        if not torch.cuda.is_available():
            raise KitError(f"--gpus {value}: CUDA is not available on this machine (--gpus cpu,cpu fans out on CPU)")
        if int(device) >= torch.cuda.device_count():
            raise KitError(f"--gpus {value}: no CUDA device {device} (this machine has {torch.cuda.device_count()})")
    return devices


def fan_out(runs: list[Settings], data: CompetitionData, folds: list[int], devices: list[str], resume: bool = False,
            progress: bool = True, log: Callable[[str], None] = print) -> list[RunOutcome]:
    """Train every run of `runs` on every fold of `folds`, one process per device at a time."""
    from kit.train.distributed import launched_by_torchrun

    if launched_by_torchrun():
        raise KitError("--gpus starts its own processes: use either torchrun (one fold over several GPUs) or --gpus")
    jobs = [settings.replace(fold=fold, progress=False) for settings in runs for fold in folds]
    outcomes = [RunOutcome(s.run_name, s.fold, "", s.fold_run.dir) for s in jobs]
    threads_per_job = max(1, available_cores() // len(devices))
    context = multiprocessing.get_context("spawn")  # a forked child would inherit the parent's CUDA state
    events = context.Queue()
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(jobs)):
        pending.put(index)

    def serve(device: str) -> None:
        # One thread per device: take the next run, start its process, wait for it, repeat.
        while True:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            outcome = outcomes[index]
            outcome.device = "cpu" if device == "cpu" else f"cuda:{device}"
            settings = jobs[index].replace(device="cpu" if device == "cpu" else "cuda",
                                           workers=jobs[index].workers if jobs[index].workers is not None
                                           else threads_per_job)
            process = context.Process(target=_run_one, name=f"kit-{outcome.model}-fold{outcome.fold}",
                                      args=(index, settings, data, device, threads_per_job, resume, events))
            started = time.perf_counter()
            process.start()
            process.join()
            outcome.seconds = time.perf_counter() - started
            if process.exitcode != 0:
                events.put(("died", index, process.exitcode))

    servers = [threading.Thread(target=serve, args=(device,), daemon=True) for device in devices]
    for server in servers:
        server.start()
    log(f"{len(jobs)} run(s) over {len(devices)} device(s) ({', '.join(devices)}); each run logs to "
        f"<run folder>/{FoldRun(Path()).log.name}")
    _show_progress(events, outcomes, jobs, servers, progress, log)
    return outcomes


def _show_progress(events, outcomes: list[RunOutcome], jobs: list[Settings], servers: list[threading.Thread],
                   progress: bool, log: Callable[[str], None]) -> None:
    """The combined view: a bar per run (epochs done, latest validation F1) and a line when a run ends."""
    bars: dict[int, tqdm] = {}

    def bar(index: int) -> tqdm:
        if index not in bars:
            o = outcomes[index]
            bars[index] = tqdm(total=jobs[index].epochs, desc=f"{o.model} fold{o.fold} [{o.device}]", unit="epoch",
                               position=len(bars), leave=True, dynamic_ncols=True, disable=not progress)
        return bars[index]

    def handle(event) -> None:
        kind, index, *rest = event
        outcome = outcomes[index]
        if kind == "start":
            bar(index)
        elif kind == "epoch":
            row = rest[0]
            bar(index).update(1)
            # the metric's columns are named after it: val_samples_f2 (+ val_samples_f2_tuned), val_logloss
            metric = history_metric(list(row))
            shown = {metric.name: f"{row[metric.column]:.3f}"}
            if metric.needs_thresholds:
                shown["tuned"] = f"{row[metric.column + '_tuned']:.3f}"
            bar(index).set_postfix(shown)
        elif kind == "done":
            outcome.ok, outcome.best_epoch, outcome.best_score = True, rest[0], rest[1]
            bar(index).close()
            log(f"{outcome.out_dir}: done on {outcome.device}, best epoch {rest[0]}, score {rest[1]:.4f}")
        elif kind == "failed" and not outcome.error:
            outcome.error = rest[0]
            bar(index).close()
            log(f"{outcome.out_dir}: FAILED on {outcome.device}: {rest[0]}")
        elif kind == "died" and not outcome.ok and not outcome.error:
            outcome.error = f"the process died (exit code {rest[0]}); see {FoldRun(outcome.out_dir).log}"
            log(f"{outcome.out_dir}: FAILED on {outcome.device}: {outcome.error}")

    while any(server.is_alive() for server in servers):
        try:
            handle(events.get(timeout=0.2))
        except queue.Empty:
            pass
    while True:  # what the last processes sent before they ended
        try:
            handle(events.get(timeout=0.2))
        except queue.Empty:
            break
    for each in bars.values():
        each.close()


def _run_one(index: int, settings: Settings, data: CompetitionData, device: str, threads: int, resume: bool,
             events) -> None:
    """In the child process: one (model, fold) run on one device, its log lines going to train.log."""
    if device != "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = device  # before anything touches CUDA in this process
    import torch

    from kit.train.loop import train_fold

    torch.set_num_threads(threads)
    out_dir = settings.fold_run.dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.fold_run.log, "a", encoding="utf-8", buffering=1) as log_file:
        def log(line: str) -> None:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

        events.put(("start", index))
        try:
            result = train_fold(settings, data, resume=resume, log=log,
                                on_epoch_end=lambda epoch, model, row: events.put(("epoch", index, row)))
        except KitError as err:
            log(f"error: {err}")
            events.put(("failed", index, str(err)))
            raise SystemExit(1) from None
        except Exception as err:  # anything else: the whole traceback goes to the log, one line to the parent
            log(traceback.format_exc())
            events.put(("failed", index, f"{type(err).__name__}: {err} (traceback in {settings.fold_run.log})"))
            raise SystemExit(1) from None
        events.put(("done", index, result.best_epoch, result.best_score))
