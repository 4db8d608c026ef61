"""The one door to Kaggle: the official `kaggle` package (`KaggleApi`, over `kagglesdk`), imported only here.

Nothing in the kit imports `kaggle` until `kit submit` or `kit download` needs it, so the rest of the kit
works without credentials. Every failure becomes one `KitError` line that says what to do; transient
failures (connection lost, 5xx) are retried with exponential backoff a bounded number of times.

`KAGGLE_API_ENVIRONMENT` is honoured the way kagglesdk defines it (TEST -> http://localhost:7777), which is
how the tests reach a local stand-in server.
"""
from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError

RETRIES_ENV = "KIT_KAGGLE_RETRIES"
BACKOFF_ENV = "KIT_KAGGLE_BACKOFF"
POLL_ENV = "KIT_KAGGLE_POLL"
TOKEN_URL = "https://www.kaggle.com/settings/api"
LIMIT_WORDS = ("daily", "allowance", "submission limit", "max number of submissions")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` tries in all, sleeping `backoff` * 2**i seconds between them."""

    attempts: int = 4
    backoff: float = 1.0
    poll_interval: float = 10.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, overridden by $KIT_KAGGLE_RETRIES, $KIT_KAGGLE_BACKOFF and $KIT_KAGGLE_POLL (seconds)."""
        def number(name, kind, default):
            value = os.environ.get(name)
            if not value:
                return default
            try:
                return kind(value)
            except ValueError:
                raise KitError(f"${name}: expected a number, found {value!r}") from None

        return cls(attempts=max(1, number(RETRIES_ENV, int, cls.attempts)),
                   backoff=max(0.0, number(BACKOFF_ENV, float, cls.backoff)),
                   poll_interval=max(0.0, number(POLL_ENV, float, cls.poll_interval)))


class UploadFailed(Exception):
    """The blob upload did not complete (kaggle reports it as a message, not an exception); worth retrying."""


# ---------------------------------------------------------------- importing and authenticating


INSTALL_HINT = "pip install 'kit[kaggle]'"


def require_kaggle():
    """`KaggleApi`, imported lazily: every use of the Kaggle client goes through here.

    The client is the install extra `kaggle` (a Kaggle notebook running `kit infer` needs none); without it this
    is one line saying how to install it. Importing `kaggle` runs its `__init__`, which authenticates at once
    and prints help text when it cannot; that text is kept off the user's screen (we say it in one line
    ourselves when credentials are needed).
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import kagglesdk  # noqa: F401  (kaggle's own transport; missing it is the same missing extra)
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ModuleNotFoundError as err:
        raise KitError(f"the Kaggle client is not installed (module {err.name!r} is missing): {INSTALL_HINT}") \
            from None
    return KaggleApi


_API_CLASS = None


def api_class():
    """`KaggleApi`, adjusted in two small ways (see the comments); built once, on first use."""
    global _API_CLASS
    if _API_CLASS is not None:
        return _API_CLASS
    KaggleApi = require_kaggle()
    from kaggle.models.kaggle_models_extended import ResumableUploadResult
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import get_env

    class KitKaggleApi(KaggleApi):
        upload_done = False

        def build_kaggle_client(self):
            # KaggleApi picks its endpoint from its own command-line flags and so ignores kagglesdk's
            # KAGGLE_API_ENVIRONMENT (TEST, QA); defer to kagglesdk's lookup, which is PROD by default.
            try:
                env = get_env()
            except Exception as err:  # kagglesdk raises a bare Exception for an unknown value
                raise KitError(str(err)) from None
            return KaggleClient(env=env, verbose="--verbose" in self.args,
                                username=self.config_values.get(self.CONFIG_NAME_USER),
                                password=self.config_values.get(self.CONFIG_NAME_KEY),
                                api_token=self.config_values.get(self.CONFIG_NAME_TOKEN),
                                response_processor=self.get_response_processor())

        def upload_complete(self, *args, **kwargs):
            # Remembered so that a connection lost *after* the upload (while Kaggle creates the submission)
            # is not blindly retried: the submission may already exist.
            result = super().upload_complete(*args, **kwargs)
            self.upload_done = result == ResumableUploadResult.COMPLETE
            return result

    _API_CLASS = KitKaggleApi
    return _API_CLASS


def endpoint() -> str:
    require_kaggle()
    from kagglesdk.kaggle_env import get_endpoint, get_env

    try:
        return get_endpoint(get_env())
    except Exception:
        return "Kaggle"


def no_credentials_message(config_dir: str | os.PathLike) -> str:
    return (f"no Kaggle credentials found: set KAGGLE_API_TOKEN (create a token at {TOKEN_URL}), or "
            f"KAGGLE_USERNAME and KAGGLE_KEY, or save kaggle.json in {config_dir} (or $KAGGLE_CONFIG_DIR)")


def credential_source(api) -> str:
    """Where the credentials in use came from, for error messages."""
    from kagglesdk.kaggle_env import get_access_token_from_env

    method = str(api.config_values.get(api.CONFIG_NAME_AUTH_METHOD, ""))
    if method == "ACCESS_TOKEN" or (not method and get_access_token_from_env()[0]):
        return get_access_token_from_env()[1] or "the access token"
    if method == "OAUTH":
        return "~/.kaggle/credentials.json"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    return str(api.config)


# ---------------------------------------------------------------- errors and retries


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _server_message(err: BaseException) -> str:
    response = getattr(err, "response", None)
    text = ""
    if response is not None:
        try:
            body = response.json()
            text = str(body.get("message") or body.get("error") or "") if isinstance(body, dict) else ""
        except ValueError:
            text = ""
    text = text or str(err)
    return " ".join(text.split())[:200]


def is_connection_error(err: BaseException) -> bool:
    import requests

    return isinstance(err, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            requests.exceptions.ChunkedEncodingError, ConnectionError))


def is_unreachable(err: BaseException) -> bool:
    """No connection could be opened at all (no route, no DNS, refused), as opposed to one lost midway."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(err, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def is_transient(err: BaseException) -> bool:
    status = _status(err)
    return isinstance(err, UploadFailed) or is_connection_error(err) or (status is not None and status >= 500)


def explain(err: BaseException, competition: str, action: str, source: str = "your credentials",
            not_found: str | None = None, attempts: int = 1, forbidden: str | None = None) -> str:
    """One line for a failed Kaggle call: what happened and what to do about it. `forbidden` says what a 403
    means for this call (by default: the competition's rules are not accepted)."""
    status = _status(err)
    detail = _server_message(err)
    where = endpoint()
    if isinstance(err, UploadFailed):
        return f"{action}: the upload to Kaggle failed {attempts} time(s); try again later"
    if status is None and is_connection_error(err):
        if is_unreachable(err):
            return f"{action}: cannot reach Kaggle at {where} (no network?) after {attempts} attempt(s)"
        return f"{action}: the connection to Kaggle at {where} was lost after {attempts} attempt(s) ({detail})"
    if status == 401:
        return (f"{action}: Kaggle rejected the credentials from {source} (401 Unauthorized): "
                f"check them, or create a new API token at {TOKEN_URL}")
    if status == 403 and forbidden:
        return f"{action}: Kaggle refused access (403 Forbidden): {forbidden} ({detail})"
    if status == 403:
        return (f"{action}: Kaggle refused access to {competition} (403 Forbidden): accept the competition's "
                f"rules at https://www.kaggle.com/competitions/{competition}/rules, or check that the token may "
                f"do this ({detail})")
    if status == 404:
        if not_found and "competition" not in not_found:
            return f"{action}: {not_found} (404)"
        return f"{action}: {not_found or f'competition {competition!r} not found on Kaggle'} (404); " \
               f"check --competition or competition.slug in kit.yaml"
    if status == 429 or (status == 400 and any(word in detail.lower() for word in LIMIT_WORDS)):
        if action.startswith("submit"):
            return (f"{action}: the daily submission limit of {competition} is reached ({status}: {detail}); "
                    "try again after 00:00 UTC")
        return f"{action}: Kaggle is rate-limiting requests ({status}: {detail}); try again later"
    if status is not None and status >= 500:
        return f"{action}: Kaggle answered {status} (server error) {attempts} time(s); try again later ({detail})"
    if status is not None:
        return f"{action}: Kaggle refused the request ({status}: {detail})"
    return f"{action}: {type(err).__name__}: {detail}"


def retry(fn: Callable[[], Any], policy: RetryPolicy, *, retry_if: Callable[[BaseException], bool] = is_transient,
          on_retry: Callable[[int, BaseException, float], None] | None = None):
    """Call `fn` until it succeeds, at most `policy.attempts` times, retrying only errors `retry_if` accepts.

    Hand-written rather than KaggleApi.with_retry: that one does not retry 5xx, and does retry 429, which for
    a submission means the daily limit. Raises the last error with `.attempts` set to the number of tries.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as err:
            if attempt >= policy.attempts or not retry_if(err):
                err.attempts = attempt
                raise
            delay = policy.backoff * 2 ** (attempt - 1)
            if on_retry is not None:
                on_retry(attempt, err, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- the session


@dataclass
class Submission:
    ref: int
    date: str
    file_name: str
    description: str
    status: str
    public_score: str
    private_score: str
    error: str = ""


def _submission(item) -> Submission:
    return Submission(ref=int(item.ref or 0), date=str(item.date or "")[:19], file_name=item.file_name or "",
                      description=item.description or "", status=getattr(item.status, "name", str(item.status)),
                      public_score=item.public_score or "", private_score=item.private_score or "",
                      error=item.error_description or "")


class KaggleSession:
    """An authenticated `KaggleApi` bound to one competition, with retries and one-line errors."""

    def __init__(self, competition: str, policy: RetryPolicy | None = None,
                 echo: Callable[[str], None] | None = None):
        self.competition = competition
        self.policy = policy or RetryPolicy.from_env()
        self.echo = echo or (lambda line: None)
        self.api = self._authenticate()

    def _warn_retry(self, action):
        def warn(attempt, err, delay):
            what = f"{_status(err)}" if _status(err) else type(err).__name__
            self.echo(f"{action}: {what}, retrying in {delay:.1f}s (attempt {attempt + 1} of {self.policy.attempts})")
        return warn

    def _authenticate(self):
        api = api_class()()  # first: without the client, this is the one line saying how to install it
        from kagglesdk.kaggle_env import get_access_token_from_env

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # kaggle prints its help text, then exits
                retry(api.authenticate, self.policy, on_retry=self._warn_retry("authenticate"))
        except SystemExit:
            token, source = get_access_token_from_env()
            if token:
                raise KitError(f"Kaggle did not accept the API token from {source} (invalid or expired): "
                               f"create a new one at {TOKEN_URL}") from None
            raise KitError(no_credentials_message(api.config_dir)) from None
        except KitError:
            raise
        except Exception as err:
            token_source = get_access_token_from_env()[1] or "your credentials"
            raise KitError(explain(err, self.competition, "authenticate", token_source,
                                   attempts=getattr(err, "attempts", 1))) from None
        return api

    def call(self, fn: Callable[[], Any], action: str, *, not_found: str | None = None,
             retry_if: Callable[[BaseException], bool] = is_transient, forbidden: str | None = None):
        try:
            return retry(fn, self.policy, retry_if=retry_if, on_retry=self._warn_retry(action))
        except KitError:
            raise
        except Exception as err:
            raise KitError(explain(err, self.competition, action, credential_source(self.api), not_found,
                                   getattr(err, "attempts", 1), forbidden)) from None

    # ------------------------------------------------------------ submissions

    def submit(self, path: str | os.PathLike, message: str) -> int:
        """Upload `path` and create the submission; returns its ref. Never repeats a create that may have landed."""
        api = self.api

        def attempt():
            api.upload_done = False
            with contextlib.redirect_stdout(io.StringIO()):  # kaggle prints upload errors; we report them
                response = api.competition_submit(str(path), message, self.competition, quiet=True)
            if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
                raise UploadFailed()
            return response

        def retry_if(err):
            # Once the file is uploaded, a lost connection may hide a created submission: do not repeat it.
            return is_transient(err) and not (api.upload_done and is_connection_error(err))

        try:
            response = retry(attempt, self.policy, retry_if=retry_if, on_retry=self._warn_retry("submit"))
        except Exception as err:
            if api.upload_done and is_connection_error(err):
                raise KitError("submit: the connection to Kaggle was lost while the submission was being created; "
                               "it may have been recorded: run `kit submissions` before submitting again") from None
            raise KitError(explain(err, self.competition, "submit", credential_source(api),
                                   attempts=getattr(err, "attempts", 1))) from None
        text = response.message or ""
        if not response.ref and any(word in text.lower() for word in LIMIT_WORDS):
            raise KitError(f"submit: the daily submission limit of {self.competition} is reached ({text}); "
                           "try again after 00:00 UTC")
        if not response.ref:  # a 200 without a reference created nothing; never log it as submitted
            raise KitError(f"submit: Kaggle created no submission for {self.competition} "
                           f"({text or 'no reason given'})")
        return int(response.ref)

    def submissions(self, limit: int = 20) -> list[Submission]:
        items = self.call(lambda: self.api.competition_submissions(self.competition, page_size=limit),
                          "list submissions") or []
        return [_submission(item) for item in items if item is not None][:limit]

    def wait_for_score(self, ref: int, timeout: float, interval: float | None = None) -> Submission | None:
        """Poll until submission `ref` is scored or errored; None if `timeout` seconds pass first."""
        interval = self.policy.poll_interval if interval is None else interval
        deadline = time.monotonic() + timeout
        while True:
            found = next((s for s in self.submissions(limit=20) if s.ref == ref), None)
            if found is not None and found.status != "PENDING":
                return found
            if time.monotonic() + interval > deadline:
                return None
            time.sleep(interval)

    # ------------------------------------------------------------ downloads

    def download_all(self, dest: Path, force: bool = False, quiet: bool = False) -> Path:
        """Download the competition's archive into `dest` (kaggle skips it if already there and complete)."""
        dest.mkdir(parents=True, exist_ok=True)
        self.call(lambda: self.api.competition_download_files(self.competition, path=str(dest), force=force,
                                                              quiet=quiet), "download")
        found = sorted(p for p in dest.glob(f"{self.competition}.*") if not p.name.endswith(".kaggle-partial"))
        if not found:
            raise KitError(f"download: Kaggle sent no archive for {self.competition} into {dest}")
        return found[0]

    def download_file(self, name: str, dest: Path, force: bool = False, quiet: bool = False) -> Path:
        """Download one competition file into `dest`; Kaggle may send it zipped (`<name>.zip`)."""
        dest.mkdir(parents=True, exist_ok=True)
        self.call(lambda: self.api.competition_download_file(self.competition, name, path=str(dest), force=force,
                                                             quiet=quiet),
                  f"download {name}", not_found=f"competition {self.competition!r} has no file {name!r}")
        base = Path(name).name
        for candidate in (dest / base, dest / f"{base}.zip"):
            if candidate.is_file():
                return candidate
        raise KitError(f"download {name}: Kaggle sent no file named {base} into {dest}")
