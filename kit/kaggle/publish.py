"""Publishing to Kaggle through the official client: a folder as a dataset (new, or a new version), a kernel
pushed and run, its output fetched, and the waits for both, bounded with a progress line.

`kaggle`'s own calls are used as they are (`dataset_create_new`, `dataset_create_version`, `dataset_status`,
`kernels_push`, `kernels_status`, `kernels_output`); this module adds the checks, waits and one-line errors.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.kaggle.client import KaggleSession

REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
DATASET_WAIT = 900.0  # seconds: Kaggle processes a few hundred MB of wheels and checkpoints in minutes
KERNEL_WAIT = 3 * 3600.0  # a notebook's own limit is 9 hours; an inference run takes minutes
LOG_TAIL = 8  # lines of a failed kernel's log shown in the error


def check_ref(ref: str, what: str) -> tuple[str, str]:
    """'owner/slug' -> (owner, slug), or one clear line."""
    if not isinstance(ref, str) or not REF.fullmatch(ref):
        raise KitError(f"{what} {ref!r}: expected owner/slug (your Kaggle user name, a slash, then the slug)")
    owner, slug = ref.split("/")
    return owner, slug


def _quiet(fn: Callable, *args, **kwargs):
    """The kaggle client prints progress and some errors; the kit reports them itself, in one line."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def _never(err: BaseException) -> bool:
    return False  # creating a dataset or pushing a kernel is not repeated blindly: it may have happened


# ---------------------------------------------------------------- datasets


def dataset_status(session: KaggleSession, ref: str) -> str | None:
    """'ready', 'blobs_received', 'failed', ... or None when the dataset does not exist (or is not visible)."""
    import requests

    def status():
        try:
            return _quiet(session.api.dataset_status, ref)
        except requests.exceptions.HTTPError as err:
            if err.response is not None and err.response.status_code == 404:
                return None
            raise

    return session.call(status, f"dataset status {ref}", forbidden=f"you may not read dataset {ref}")


def upload_dataset(session: KaggleSession, folder: str | os.PathLike, ref: str, notes: str = "kit bundle",
                   public: bool = False, echo: Callable[[str], None] = print) -> str:
    """Create dataset `ref` from `folder` (holding dataset-metadata.json), or a new version if it exists.
    Folders go up as zip archives, which Kaggle unpacks. Returns 'created' or 'new version'."""
    owner, _ = check_ref(ref, "dataset")
    forbidden = f"you ({session.api.config_values.get('username', 'this token')}) may not write datasets of {owner}"
    exists = dataset_status(session, ref) is not None
    if exists:
        echo(f"uploading a new version of dataset {ref}")
        response = session.call(lambda: _quiet(session.api.dataset_create_version, str(folder), notes, quiet=True,
                                               dir_mode="zip"),
                                f"new version of dataset {ref}", retry_if=_never, forbidden=forbidden)
    else:
        echo(f"creating dataset {ref}")
        response = session.call(lambda: _quiet(session.api.dataset_create_new, str(folder), public=public,
                                               quiet=True, dir_mode="zip"),
                                f"create dataset {ref}", retry_if=_never, forbidden=forbidden)
    error = getattr(response, "error", None)
    if error:
        raise KitError(f"{'new version of' if exists else 'create'} dataset {ref}: Kaggle refused it: {error}")
    return "new version" if exists else "created"


def wait_dataset_ready(session: KaggleSession, ref: str, timeout: float = DATASET_WAIT,
                       interval: float | None = None, echo: Callable[[str], None] = print) -> str:
    """Poll until dataset `ref` is ready (Kaggle unpacks and indexes the files first), at most `timeout` s."""
    interval = session.policy.poll_interval if interval is None else interval
    start = time.monotonic()
    last = None
    while True:
        status = dataset_status(session, ref)
        elapsed = time.monotonic() - start
        if status != last:
            echo(f"dataset {ref}: {status or 'not visible yet'} ({elapsed:.0f}s)")
            last = status
        if status == "ready":
            return status
        if status in ("failed", "deleted"):
            raise KitError(f"dataset {ref}: Kaggle could not process the upload (status {status}); upload it again")
        if elapsed + interval > timeout:
            raise KitError(f"dataset {ref}: not ready after {timeout:.0f}s (status {status or 'not visible'}); "
                           f"see https://www.kaggle.com/datasets/{ref} and wait before pushing the notebook")
        time.sleep(interval)


# ---------------------------------------------------------------- kernels


@dataclass
class KernelRun:
    ref: str
    version: int | None
    url: str
    status: str = ""
    failure: str = ""
    log_path: Path | None = None
    log_text: str = ""
    files: list[Path] = field(default_factory=list)

    def tail(self, lines: int = LOG_TAIL) -> list[str]:
        return [line for line in self.log_text.splitlines() if line.strip()][-lines:]


def log_text(raw: str) -> str:
    """A kernel log as Kaggle sends it (a JSON list of {stream_name, time, data}) -> the text it printed."""
    try:
        entries = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(entries, list):
        return raw
    return "".join(str(entry.get("data", "")) for entry in entries if isinstance(entry, dict))


def push_kernel(session: KaggleSession, folder: str | os.PathLike, echo: Callable[[str], None] = print) -> KernelRun:
    """Push the kernel in `folder` (kernel-metadata.json + its code file): a new version, which Kaggle runs."""
    meta = json.loads((Path(folder) / "kernel-metadata.json").read_text(encoding="utf-8"))
    ref = str(meta.get("id", ""))
    owner, _ = check_ref(ref, "kernel")
    response = session.call(lambda: _quiet(session.api.kernels_push, str(folder)), f"push kernel {ref}",
                            retry_if=_never, forbidden=f"you may not write kernels of {owner}")
    if getattr(response, "error", None):
        raise KitError(f"push kernel {ref}: Kaggle refused it: {response.error}")
    bad = list(getattr(response, "invalid_dataset_sources", None) or []) + \
        list(getattr(response, "invalid_competition_sources", None) or []) + \
        list(getattr(response, "invalid_kernel_sources", None) or [])
    if bad:
        raise KitError(f"push kernel {ref}: Kaggle cannot attach {', '.join(bad)} (not found, or not visible to "
                       "you); upload the bundle first and accept the competition's rules")
    run = KernelRun(ref, getattr(response, "version_number", None), getattr(response, "url", "") or "")
    echo(f"pushed {ref} version {run.version}: {run.url}")
    return run


def wait_kernel(session: KaggleSession, run: KernelRun, timeout: float = KERNEL_WAIT, interval: float | None = None,
                echo: Callable[[str], None] = print) -> KernelRun:
    """Poll the kernel's status until it is complete, failed or cancelled, at most `timeout` seconds."""
    interval = session.policy.poll_interval if interval is None else interval
    start, last = time.monotonic(), None
    while True:
        response = session.call(lambda: session.api.kernels_status(run.ref), f"kernel status {run.ref}")
        status = getattr(response.status, "name", str(response.status)).upper()
        elapsed = time.monotonic() - start
        if status != last:
            echo(f"kernel {run.ref}: {status.lower()} ({elapsed:.0f}s)")
            last = status
        if status in ("COMPLETE", "ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED"):
            run.status, run.failure = status, response.failure_message or ""
            return run
        if elapsed + interval > timeout:
            raise KitError(f"kernel {run.ref}: still {status.lower()} after {timeout:.0f}s; see {run.url or run.ref} "
                           "and fetch its output later")
        time.sleep(interval)


def fetch_output(session: KaggleSession, run: KernelRun, dest: str | os.PathLike) -> KernelRun:
    """Download the kernel's output files and its log (`<slug>.log`, as text) into `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files, _ = session.call(lambda: session.api.kernels_output(run.ref, str(dest), force=True, quiet=True),
                            f"kernel output {run.ref}")
    slug = run.ref.split("/")[1]
    run.files = [Path(f) for f in files if Path(f).name != f"{slug}.log"]
    raw_log = dest / f"{slug}.log"
    if raw_log.is_file():
        run.log_text = log_text(raw_log.read_text(encoding="utf-8"))
        raw_log.write_text(run.log_text, encoding="utf-8")  # kept as the text the kernel printed
        run.log_path = raw_log
    return run
