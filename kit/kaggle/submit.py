"""`kit submit`: validate a submission file, send it to Kaggle, log the attempt, optionally wait for the score.

The file itself is only read. Every attempt except a dry run adds exactly one row to `submissions/log.csv`.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.data.spec import CompetitionSpec
from kit.data.submission import validate_submission
from kit.errors import KitError
from kit.io import sha256_file
from kit.kaggle.log import DEFAULT_LOG, append_row, previous_submission
from kit.layout import submission_report
from kit.score.metrics import parse_metric

MAX_MESSAGE = 250
F1_FLAVOURS = ("cv", "tuned", "calibrated", "at_0.5", "oof")


@dataclass
class SubmitResult:
    file: Path
    competition: str
    message: str
    sha256: str
    rows: int
    outcome: str
    ref: int | None = None
    score: str = ""
    dry_run: bool = False

    def describe(self) -> str:
        """For the terminal: what would be sent (dry run) or what was sent, and the public score if there is one."""
        if self.dry_run:
            size = self.file.stat().st_size if self.file.is_file() else 0
            return (f"dry run: would upload {self.file} ({self.rows} rows, {size} bytes, sha256 {self.sha256[:12]}) "
                    f"to {self.competition} with message: {self.message}")
        line = f"submitted {self.file} to {self.competition} (ref {self.ref}): {self.message}"
        return line + (f"\npublic score: {self.score}" if self.outcome == "scored" else "")


def _blend_f1(meta: dict) -> tuple[float, str] | None:
    """The blend's OOF score (the competition's metric) from a `kit blend` JSON (`blend.score.cv`, else `tuned`,
    else `at_0.5`; `blend.f1` in JSONs written before the metric followed the competition)."""
    scores = meta.get("blend")
    scores = (scores.get("score") or scores.get("f1")) if isinstance(scores, dict) else None
    if not isinstance(scores, dict):
        return None
    for flavour in F1_FLAVOURS:
        value = scores.get(flavour)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), flavour
    return None


def _member_name(member) -> str:
    if isinstance(member, dict):
        return str(member.get("name") or member.get("model") or member.get("run") or member.get("path") or "?")
    return str(member)


def default_message(path: str | os.PathLike) -> str:
    """'<file>: mean of 3 (a, b, c), OOF macro F1 0.612 (cv)' from the `<name>.json` beside the file.

    Falls back to the file name when there is no JSON or it lacks those keys.
    """
    path = Path(path)
    parts = []
    try:
        meta = json.loads(submission_report(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict):
        members = meta.get("members")
        if isinstance(members, dict):
            members = list(members)
        method = meta.get("method")
        if isinstance(members, list) and members:
            names = ", ".join(_member_name(m) for m in members)
            parts.append(f"{method or 'blend'} of {len(members)} ({names})")
        elif isinstance(method, str):
            parts.append(method)
        f1 = _blend_f1(meta)
        if f1 is not None:
            try:
                metric = parse_metric(meta.get("metric")).label  # macro F1 for JSONs that name none
            except KitError:
                metric = str(meta.get("metric"))
            parts.append(f"OOF {metric} {f1[0]:.4f}" + (f" ({f1[1]})" if f1[1] else ""))
    message = path.name + (": " + ", ".join(parts) if parts else "")
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


@contextlib.contextmanager
def failures_logged(record: Callable[[str], None]):
    """Log a call that fails as one row (`failed: <the reason>`, or `failed: interrupted`), then let it go on."""
    try:
        yield
    except KitError as err:
        record(f"failed: {err}")
        raise
    except BaseException:
        record("failed: interrupted")
        raise


def submit(path: str | os.PathLike, spec: CompetitionSpec, sample_submission: str | os.PathLike, *,
           competition: str | None = None, message: str | None = None, wait: bool = False,
           timeout: float = 900.0, dry_run: bool = False, force: bool = False,
           log_path: str | os.PathLike = DEFAULT_LOG, policy=None,
           echo: Callable[[str], None] | None = None) -> SubmitResult:
    """Validate `path`, submit it to `competition` (default: the spec's slug) and log the attempt.

    Invalid files and files already submitted to the same competition (same sha256, unless `force`) are
    refused before any network call. With `wait`, polls until Kaggle scores the submission or `timeout`
    seconds pass. `dry_run` does all the checks offline and reports what would be sent.
    """
    from kit.kaggle.client import KaggleSession

    path = Path(path)
    competition = competition or spec.slug
    message = " ".join((message or default_message(path)).split())
    sha = sha256_file(path) if path.is_file() else ""
    result = SubmitResult(file=path, competition=competition, message=message, sha256=sha, rows=0, outcome="",
                          dry_run=dry_run)

    def record(outcome: str, score: str = "") -> None:
        result.outcome, result.score = outcome, score
        if not dry_run:
            append_row(log_path, file=str(path), sha256=sha, competition=competition, message=message,
                       outcome=outcome, score=score)

    try:
        result.rows = validate_submission(path, sample_submission, spec)
    except KitError as err:
        record(f"invalid: {err}")
        raise
    previous = previous_submission(log_path, sha, competition)
    if previous is not None and not force:
        record("refused: already submitted")
        raise KitError(f"{path}: these exact bytes (sha256 {sha[:12]}) were already submitted to {competition} "
                       f"at {previous['time']}; use --force to submit them again")
    if dry_run:
        result.outcome = "dry-run"
        return result

    with failures_logged(record):
        session = KaggleSession(competition, policy, echo=echo)
        result.ref = session.submit(path, message)
    if not wait:
        record("submitted")
        return result
    return _wait(session, result, timeout, record, str(path))


def list_submissions(competition: str, limit: int = 20, policy=None):
    """The competition's most recent submissions (newest first), with their scores."""
    from kit.kaggle.client import KaggleSession

    return KaggleSession(competition, policy).submissions(limit)


def submit_kernel(kernel: str, competition: str, *, version: int | None = None, message: str | None = None,
                  file_name: str = "submission.csv", wait: bool = False, timeout: float = 900.0,
                  log_path: str | os.PathLike = DEFAULT_LOG, policy=None,
                  echo: Callable[[str], None] | None = None) -> SubmitResult:
    """Submit notebook `kernel` (owner/slug; its latest version, or `version`) to code competition `competition`:
    Kaggle reruns it on the hidden test set and scores the `file_name` it writes. Logged like a file submission
    (file `kernel owner/slug vN`, no sha256); with `wait`, polls until it is scored or `timeout` seconds pass."""
    from kit.kaggle.client import KaggleSession, is_transient
    from kit.kaggle.publish import check_ref

    label = f"kernel {kernel}" + (f" v{version}" if version else "")
    message = " ".join((message or f"{label} ({file_name})").split())
    result = SubmitResult(file=Path(label), competition=competition, message=message, sha256="", rows=0, outcome="")

    def record(outcome: str, score: str = "") -> None:
        result.outcome, result.score = outcome, score
        append_row(log_path, file=label, sha256="", competition=competition, message=message, outcome=outcome,
                   score=score)

    try:
        check_ref(kernel, "--kernel")
    except KitError as err:
        record(f"invalid: {err}")
        raise
    with failures_logged(record):
        session = KaggleSession(competition, policy, echo=echo)
        owner = kernel.split("/")[0]
        response = session.call(
            lambda: session.api.competition_submit_code(file_name, message, competition, kernel=kernel,
                                                        kernel_version=version, quiet=True),
            "submit", not_found=f"kernel {kernel}" + (f" version {version}" if version else "") + " or competition "
            f"{competition!r} not found", retry_if=lambda err: is_transient(err) and not _created(err),
            forbidden=f"the token may not submit {owner}'s kernel to {competition}, or the competition's rules "
                      f"are not accepted (https://www.kaggle.com/competitions/{competition}/rules)")
    result.ref = int(response.ref or 0)
    if not result.ref:
        record(f"failed: {response.message or 'no submission reference'}")
        raise KitError(f"submit {label}: Kaggle did not create a submission ({response.message or 'no reason given'})")
    if not wait:
        record("submitted")
        return result
    return _wait(session, result, timeout, record, label)


def _created(err: BaseException) -> bool:
    """A connection lost after the request went out may hide a created submission: not repeated."""
    from kit.kaggle.client import is_connection_error

    return is_connection_error(err)


def _wait(session, result: SubmitResult, timeout: float, record, label: str) -> SubmitResult:
    try:
        scored = session.wait_for_score(result.ref, timeout)
    except KitError as err:
        record("submitted")
        raise KitError(f"submitted (ref {result.ref}), but waiting for the score failed: {err}") from None
    except BaseException:
        record("submitted")
        raise
    if scored is None:
        record("submitted")
        return result
    if scored.status == "ERROR":
        record(f"scoring-failed: {scored.error or 'no reason given'}")
        raise KitError(f"{label}: Kaggle could not score submission {result.ref}: {scored.error or 'no reason given'}")
    record("scored", scored.public_score)
    return result
