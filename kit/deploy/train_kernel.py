"""`kit notebook OUT --train`: a Kaggle GPU kernel (internet off) that trains one fold and keeps its run as output.

The script (`train.py`) installs kit from the attached training bundle's wheels (`kit bundle --train`), copies
the run of an earlier version of itself when `--resume-from` attaches one (and passes `--resume`), and runs
`kit train` on the bundle's folds and spec with a `--time-limit` just under the session limit (the session
limit less a margin for installing and for Kaggle saving the output). Its `/kaggle/working` ends up holding

    runs/<model>/fold<k>/    what `kit pull` brings home
    cache/                   the pre-resized images, with --cache (kept for the next version)
    kit-status.json          {"exit_code", "command", "notebook", "kernel", "fold"}: 75 = stopped by the limit

With several GPUs the fold runs under torchrun (DDP, one process per GPU), or with `--gpus 0,1` the folds fan
out over the GPUs (one kernel for all folds). Every path lies under one root, `/kaggle` unless $KIT_KAGGLE_ROOT
says otherwise, so the same script runs anywhere whose `<root>/input` holds the attached folders.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.data.spec import CompetitionSpec
from kit.deploy.bundle import MARKER, slugify
from kit.deploy.notebook import ATTACHED, KAGGLE_ROOT, LOCATE, OUTPUT, ROOT_ENV, Notebook, kernel_metadata
from kit.deploy.train_bundle import FOLDS_IN_BUNDLE
from kit.errors import KitError
from kit.io import write_text
from kit.kaggle.publish import KERNEL_WAIT, KernelRun, check_ref
from kit.kaggle.pull import STATUS, STOPPED_EXIT_CODE, resume_command
from kit.train.budget import format_duration, parse_duration  # noqa: F401 - the CLI reads durations from here

SCRIPT = "train.py"
WEIGHTS_MARKER = "weights.json"  # written by `kit weights` into its folder
SESSION_LIMIT = 9 * 3600.0  # a Kaggle GPU session
MARGIN = 20 * 60.0  # installing kit, starting, and Kaggle saving /kaggle/working after the run
# Set by the kernel itself: the data, folds, runs, spec and the budget; --resume and --gpus come from their own
# notebook options.
RESERVED = {"data_dir": "--data", "config_path": "--config", "runs": "--runs", "folds": "--folds",
            "resume": "--resume", "gpus": "--gpus (give it to kit notebook)", "time_limit": "--time-limit "
            "(it follows --session-limit)", "fold": "--fold", "models": "--model"}

TEMPLATE = '''"""Kit training kernel {kernel}: install kit offline from the bundle {bundle}, train fold {fold} of
{competition} within {time_limit}, keep runs/ (and kit-status.json) in working/. Written by `kit notebook --train`;
every path lies under one root."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get({root_env!r}, {root!r}))  # the one setting: input/ and working/ lie under it
KERNEL = {kernel!r}
BUNDLE = {bundle!r}
COMPETITION = {competition!r}
SAMPLE_SUBMISSION = {sample!r}
WEIGHTS = {weights!r}  # a `kit weights` dataset, or None
RESUME_FROM = {resume_from!r}  # an earlier version of this kernel whose runs/ this one continues, or None
TRAIN = {train!r}  # kit train's arguments: models, fold and settings
TIME_LIMIT = {time_limit!r}  # Kaggle's session limit less a margin for installing and saving the output
GPUS = {gpus!r}  # fan the folds out over these devices (kit train --gpus), or None
CACHE = {cache!r}  # build the pre-resized image cache in working/cache first
NOTEBOOK = {notebook!r}  # the command that wrote this kernel (kit pull says how to resume it)


''' + ATTACHED + '''def write_status(path, status):
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(status, indent=2) + "\\n")
    os.replace(temporary, path)


''' + LOCATE + '''env = dict(os.environ, **{{{root_env!r}: str(ROOT)}})
if WEIGHTS:
    env["KIT_WEIGHTS"] = str(attached(WEIGHTS.split("/")[1], {weights_marker!r}))
if RESUME_FROM:
    earlier = attached(RESUME_FROM.split("/")[1], {status!r})
    for part in ("runs", "cache"):
        if (earlier / part).is_dir():
            shutil.copytree(earlier / part, working / part, dirs_exist_ok=True)
subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--quiet", "kit"],
               check=True)
common = ["--data", str(data), "--config", str(bundle / "kit.yaml")]
if CACHE:
    env["KIT_CACHE"] = str(working / "cache")
    size = TRAIN[TRAIN.index("--size") + 1:][:1] if "--size" in TRAIN else []
    subprocess.run([sys.executable, "-m", "kit", "cache", *common, "--out", str(working / "cache"),
                    *(["--size", *size] if size else [])], check=True, cwd=working, env=env)
arguments = ["train", *TRAIN, *common, "--folds", str(bundle / {folds!r}), "--runs", str(working / "runs"),
             "--time-limit", TIME_LIMIT, *(["--resume"] if RESUME_FROM else [])]
if GPUS:
    command = [sys.executable, "-m", "kit", *arguments, "--gpus", GPUS]
else:
    import torch

    gpus = torch.cuda.device_count()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={{gpus}}", "-m",
               "kit", *arguments] if gpus > 1 else [sys.executable, "-m", "kit", *arguments]
print("running " + " ".join(command), flush=True)
code = subprocess.run(command, cwd=working, env=env).returncode
write_status(working / {status!r}, {{"exit_code": code, "command": command[1:], "notebook": NOTEBOOK,
                                    "kernel": KERNEL, "time_limit": TIME_LIMIT}})
sys.exit(0 if code in (0, {stopped}) else code)  # stopped by the limit: a clean, resumable end
'''


@dataclass
class TrainingKernel:
    """One kernel to write and push: its folder, reference and fold."""

    notebook: Notebook
    fold: str
    run: KernelRun | None = None
    status: dict = field(default_factory=dict)


def training_metadata(ref: str, bundle: str, competition: str, weights: str | None, resume_from: str | None) -> dict:
    """An inference kernel's metadata on a GPU, with the weights dataset and the kernel it resumes attached."""
    return {**kernel_metadata(ref, bundle, competition, gpu=True), "code_file": SCRIPT,
            "dataset_sources": [bundle, *([weights] if weights else [])],
            "kernel_sources": [resume_from] if resume_from else []}


def training_script(ref: str, bundle: str, spec: CompetitionSpec, train: Sequence[str], time_limit: str, *,
                    weights: str | None = None, resume_from: str | None = None, gpus: str | None = None,
                    cache: bool = False, notebook: Sequence[str] = ()) -> str:
    return TEMPLATE.format(root_env=ROOT_ENV, root=KAGGLE_ROOT, kernel=ref, bundle=bundle, competition=spec.slug,
                           sample=spec.sample_submission, weights=weights, resume_from=resume_from,
                           train=list(train), time_limit=time_limit, gpus=gpus, cache=cache, notebook=list(notebook),
                           marker=MARKER, weights_marker=WEIGHTS_MARKER, status=STATUS, folds=FOLDS_IN_BUNDLE,
                           stopped=STOPPED_EXIT_CODE, fold=_fold_of(train))


def _fold_of(train: Sequence[str]) -> str:
    return train[list(train).index("--fold") + 1] if "--fold" in train else "0"


def default_kernel_ref(bundle: str, models: Sequence[str]) -> str:
    owner, slug = check_ref(bundle, "--bundle")
    return f"{owner}/{slug}-{slugify('-'.join(models))}" if models else f"{owner}/{slug}-train"


def write_training_notebooks(out: str | os.PathLike, bundle: str, spec: CompetitionSpec, folds: Sequence[int | str],
                             *, models: Sequence[str] = (), train_args: Sequence[str] = (), ref: str | None = None,
                             weights: str | None = None, resume_from: str | None = None,
                             session_limit: float = SESSION_LIMIT, margin: float = MARGIN, gpus: str | None = None,
                             cache: bool = False) -> list[TrainingKernel]:
    """One kernel folder per entry of `folds` ('all' with `gpus`: one kernel for every fold): `out` for one
    kernel, `out/fold<k>` for several. Each kernel is `<ref>-fold<k>`; with several, `resume_from` names the
    earlier kernels the same way (`<resume_from>-fold<k>`)."""
    check_ref(bundle, "--bundle")
    for name, value in (("--weights", weights), ("--resume-from", resume_from)):
        if value is not None:
            check_ref(value, name)
    base = ref or default_kernel_ref(bundle, models)
    check_ref(base, "--id")
    limit = session_limit - margin
    if limit <= 60:
        raise KitError(f"--session-limit {format_duration(session_limit)} less --margin {format_duration(margin)} "
                       "leaves no time to train")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise KitError(f"{out}: exists and is not a folder")
    made = []
    for fold in folds:
        kernel_ref = f"{base}-fold{fold}" if fold != "all" else f"{base}-folds"
        if len(kernel_ref.split("/")[1]) > 50:
            raise KitError(f"kernel {kernel_ref!r}: Kaggle allows slugs (and titles) of at most 50 characters; "
                           "give a shorter --id")
        earlier = (f"{resume_from}-fold{fold}" if len(folds) > 1 else resume_from) if resume_from else None
        folder = out / f"fold{fold}" if len(folds) > 1 else out
        train = [*(word for model in models for word in ("--model", model)), "--fold", str(fold), *train_args]
        command = notebook_command(folder, bundle, base, fold, models, train_args, weights, session_limit, margin,
                                   gpus, cache)
        files = [write_text(folder / "kernel-metadata.json", json.dumps(
                     training_metadata(kernel_ref, bundle, spec.slug, weights, earlier), indent=2) + "\n"),
                 write_text(folder / SCRIPT, training_script(kernel_ref, bundle, spec, train, format_duration(limit),
                                                             weights=weights, resume_from=earlier, gpus=gpus,
                                                             cache=cache, notebook=command))]
        made.append(TrainingKernel(Notebook(folder, kernel_ref, files), str(fold)))
    return made


def notebook_command(out: Path, bundle: str, base: str, fold, models, train_args, weights, session_limit, margin,
                     gpus, cache) -> list[str]:
    """The `kit notebook` command that writes this fold's kernel again (kit pull adds --resume-from to it)."""
    words = ["kit", "notebook", str(out), "--train", "--bundle", bundle, "--id", base, "--fold", str(fold)]
    words += [w for model in models for w in ("--model", model)]
    words += ["--weights", weights] if weights else []
    words += ["--session-limit", format_duration(session_limit), "--margin", format_duration(margin)]
    words += ["--gpus", gpus] if gpus else []
    words += ["--cache"] if cache else []
    return [*words, *train_args, "--push"]


# ---------------------------------------------------------------- pushing and waiting


def push_training(kernels: Sequence[TrainingKernel], competition: str, *, timeout: float = KERNEL_WAIT,
                  log: Callable[[str], None] = print, policy=None) -> list[TrainingKernel]:
    """Push every kernel (Kaggle runs them at once), wait for each to end (bounded), fetch its output and log into
    `<kernel folder>/output`. A kernel that failed is one error line with its log's last lines, after all have
    been fetched; one stopped by its time limit is reported with the command that resumes it."""
    from kit.kaggle.client import KaggleSession
    from kit.kaggle.publish import fetch_output, push_kernel, wait_kernel

    session = KaggleSession(competition, policy, echo=log)
    for kernel in kernels:
        kernel.run = push_kernel(session, kernel.notebook.path, log)
    failures = []
    for kernel in kernels:
        run = wait_kernel(session, kernel.run, timeout, echo=log)
        fetch_output(session, run, kernel.notebook.path / OUTPUT)
        status_file = kernel.notebook.path / OUTPUT / STATUS
        kernel.status = json.loads(status_file.read_text(encoding="utf-8")) if status_file.is_file() else {}
        if run.status != "COMPLETE" or kernel.status.get("exit_code") not in (0, STOPPED_EXIT_CODE):
            for line in run.tail():
                log(f"  {line}")
            where = f"; log in {run.log_path}" if run.log_path else ""
            code = kernel.status.get("exit_code")
            failures.append(f"kernel {run.ref} version {run.version} ended in {run.status.lower()}"
                            f"{f' ({run.failure})' if run.failure else ''}"
                            f"{f', kit train exit code {code}' if code is not None else ''}{where}; last lines: "
                            + (" | ".join(line.strip() for line in run.tail()) or "(no log)"))
        elif kernel.status.get("exit_code") == STOPPED_EXIT_CODE:
            log(f"kernel {run.ref} version {run.version} stopped at its time limit; continue it with: "
                + resume_command(kernel.status, run.ref))
        else:
            log(f"kernel {run.ref} version {run.version} complete; bring its runs home with: kit pull {run.ref}")
    if failures:
        raise KitError("; ".join(failures))
    return list(kernels)
