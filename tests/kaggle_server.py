"""A stand-in for the Kaggle API: enough for `kit submit`, `kit submissions`, `kit download`, `kit bundle --upload`,
`kit notebook --push` and `kit submit --kernel`.

Standard library only, on 127.0.0.1. It answers the requests the `kaggle` package (2.x, over kagglesdk) makes,
as Kaggle does, routed on the FULL path `/api/v1/<service>/<method>` (a method under the wrong service is 404):

  security.OAuthService/IntrospectToken                     -> {active, username}
  competitions.CompetitionApiService/StartSubmissionUpload  -> {token, createUrl}
  PUT <createUrl>                                           -> 200 (the bytes are kept, by token)
  competitions.CompetitionApiService/CreateSubmission       {competitionName, blobFileTokens, submissionDescription}
                                                            -> {message, ref}
  competitions.CompetitionApiService/CreateCodeSubmission   {competitionName, kernelOwner, kernelSlug,
                                                             kernelVersion, fileName, submissionDescription}
                                                            -> {message, ref}
  competitions.CompetitionApiService/ListSubmissions        -> {submissions: [...]} (scored after `polls_to_score`)
  competitions.CompetitionApiService/DownloadDataFiles      -> 302 to /files/<competition>.zip
  competitions.CompetitionApiService/DownloadDataFile       {fileName} -> 302 to /files/<fileName>
  blobs.BlobApiService/StartBlobUpload                      {type, name, contentLength, ...} -> {token, createUrl}
  datasets.DatasetApiService/GetDatasetStatus               {ownerSlug, datasetSlug} -> {status} (404 if unknown)
  datasets.DatasetApiService/CreateDataset                  {ownerSlug, slug, title, licenseName, isPrivate,
                                                             files: [{token}]} -> {ref, url, status, error}
  datasets.DatasetApiService/CreateDatasetVersion           {ownerSlug, datasetSlug, body: {versionNotes, files}}
                                                            -> {ref, url, status, error}
  kernels.KernelsApiService/SaveKernel                      {slug, newTitle, text, language, kernelType, ...}
                                                            -> {ref, url, versionNumber, error, invalid...Sources}
  kernels.KernelsApiService/GetKernelSessionStatus          {userName, kernelSlug} -> {status, failureMessage}
  kernels.KernelsApiService/ListKernelSessionOutput         {userName, kernelSlug} -> {files: [{url, fileName}], log}
  GET /files/<name>                                         -> the bytes, with Content-Length and Last-Modified

A dataset is READY after `polls_to_ready` status calls (None: never). A pushed kernel is QUEUED, RUNNING, then
COMPLETE or ERROR after `polls_to_finish` status calls; `kernel_run(text) -> (ok, log text, {name: bytes})` (or
`kernel_job(ref, body)`, which sees every source attached) decides what the run printed and wrote (by default it
writes `kernel_outputs`); output names may hold folders (`runs/<model>/fold<k>/best.pt`), and are sent
`output_page_size` at a time when that is set. A kernel source that is not a kernel pushed before is invalid. The log is sent as Kaggle sends it: a JSON
list of {stream_name, time, data} entries.

Faults, as Kaggle gives them: a slug in `taken_slugs` belongs to someone else (invisible to GetDatasetStatus,
refused by CreateDataset with an error in the answer); writing under another owner than `username` is 403.
Errors are JSON `{"code": N, "message": ...}`. `fail(name, 500, "drop", ...)` queues faults for the next calls of
one method (a status code, or "drop": close the connection without answering). Everything received is recorded
in `requests`. Use it as a context manager; `stop()` shuts it down.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

from local_server import LocalServer

API_PREFIX = "/api/v1/"
# Every method the stand-in serves, under the service kagglesdk calls it on.
SERVICES = {
    "security.OAuthService": ("IntrospectToken",),
    "competitions.CompetitionApiService": ("StartSubmissionUpload", "CreateSubmission", "CreateCodeSubmission",
                                           "ListSubmissions", "GetSubmissionLimits", "DownloadDataFiles",
                                           "DownloadDataFile"),
    "blobs.BlobApiService": ("StartBlobUpload",),
    "datasets.DatasetApiService": ("GetDatasetStatus", "CreateDataset", "CreateDatasetVersion"),
    "kernels.KernelsApiService": ("SaveKernel", "GetKernelSessionStatus", "ListKernelSessionOutput"),
}
ROUTES = {f"{service}/{method}": method for service, methods in SERVICES.items() for method in methods}
KERNEL_STATES = ("QUEUED", "RUNNING")  # before COMPLETE or ERROR


@dataclass
class Received:
    method: str
    name: str  # the API method (e.g. "CreateSubmission"), or "upload" / "files"
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"{}")


@dataclass
class StandIn(LocalServer):
    competition: str = "human-protein-atlas-image-classification"
    files: dict[str, bytes] = field(default_factory=dict)  # the competition's files, by relative path
    username: str = "tester"
    key: str = "secret-key"
    token: str = "secret-token"
    rules_accepted: bool = True
    polls_to_score: int = 1
    score: str = "0.4321"
    scores: dict = field(default_factory=dict)  # ref -> (public, private): per-submission scores instead of `score`
    scoring_error: str = ""  # set to make every submission end in ERROR with this description
    archive: bytes | None = None  # the whole-competition zip; built from `files` when None
    polls_to_ready: int | None = 1  # dataset status calls before READY; None = never ready
    polls_to_finish: int = 2  # kernel status calls before it ends
    taken_slugs: set[str] = field(default_factory=set)  # owner/slug of datasets that belong to someone else
    kernel_outputs: dict[str, bytes] = field(default_factory=dict)  # what a kernel run writes by default
    kernel_run: object = None  # callable(text) -> (ok, log text, {name: bytes}); None: ok, kernel_outputs
    kernel_job: object = None  # callable(ref, SaveKernel body) -> (ok, log, {name: bytes}); wins over kernel_run
    output_page_size: int = 0  # >0: ListKernelSessionOutput sends at most this many files per page
    create_answer: tuple | None = None  # (status, JSON body): CreateSubmission answers this and creates nothing

    def __post_init__(self):
        self.requests: list[Received] = []
        self.faults: dict[str, list] = {}
        self.uploads: dict[str, bytes] = {}
        self.blobs: dict[str, dict] = {}  # token -> {name, contentLength} of StartBlobUpload
        self.datasets: dict[str, dict] = {}  # owner/slug -> {title, licenseName, isPrivate, versions, polls}
        self.kernels: dict[str, dict] = {}  # owner/slug -> {versions: [request bodies], status, log, outputs, polls}
        self.submissions: list[dict] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------ control

    def _handler_class(self):
        return _handler(self)

    def fail(self, name: str, *faults) -> None:
        """Answer the next calls of `name` with these faults, in order: an HTTP status, or "drop"."""
        with self._lock:
            self.faults.setdefault(name, []).extend(faults)

    def calls(self, name: str) -> list[Received]:
        return [r for r in self.requests if r.name == name]

    def zip_bytes(self) -> bytes:
        if self.archive is not None:
            return self.archive
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(self.files.items()):
                zf.writestr(name, data)
        return buffer.getvalue()

    # ------------------------------------------------------------ the API

    def authorized(self, headers) -> bool:
        value = headers.get("Authorization", "")
        if value == f"Bearer {self.token}":
            return True
        expected = base64.b64encode(f"{self.username}:{self.key}".encode()).decode()
        return value == f"Basic {expected}"

    def api(self, name: str, body: dict, headers) -> tuple[int, dict | None, str | None]:
        """(status, JSON body, redirect path) for one API call."""
        handler = getattr(self, f"_{name}", None)
        if handler is not None and name != "IntrospectToken":
            if not self.authorized(headers):
                return 401, {"code": 401, "message": "Unauthenticated"}, None
            return handler(body)
        if name == "IntrospectToken":
            active = body.get("token") == self.token
            return 200, {"active": active, "username": self.username if active else ""}, None
        if not self.authorized(headers):
            return 401, {"code": 401, "message": "Unauthenticated"}, None
        if body.get("competitionName", self.competition) != self.competition:
            return 404, {"code": 404, "message": f"Competition '{body.get('competitionName')}' not found"}, None
        if not self.rules_accepted and name in ("StartSubmissionUpload", "CreateSubmission", "CreateCodeSubmission",
                                                "DownloadDataFiles", "DownloadDataFile"):
            return 403, {"code": 403, "message": "You must accept this competition's rules first"}, None
        if name == "StartSubmissionUpload":
            token = f"blob-{len(self.calls(name))}"
            return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, None
        if name == "CreateSubmission" and self.create_answer is not None:  # e.g. the daily limit, as Kaggle says it
            return *self.create_answer, None
        if name == "CreateSubmission":
            token = body.get("blobFileTokens", "")
            if token not in self.uploads:
                return 400, {"code": 400, "message": f"Unknown blob token {token!r}"}, None
            ref = 1000 + len(self.submissions)
            self.submissions.append({"ref": ref, "fileName": f"upload-{token}.csv",
                                     "description": body.get("submissionDescription", ""),
                                     "date": "2024-01-01T00:00:00.000Z", "status": "PENDING", "polls": 0})
            return 200, {"message": "Successfully submitted to Human Protein Atlas Image Classification",
                         "ref": ref}, None
        if name == "CreateCodeSubmission":
            kernel = f"{body.get('kernelOwner', '')}/{body.get('kernelSlug', '')}"
            if kernel not in self.kernels:
                return 404, {"code": 404, "message": f"Kernel '{kernel}' not found"}, None
            versions = self.kernels[kernel]["versions"]
            version = body.get("kernelVersion") or len(versions)
            if not 1 <= int(version) <= len(versions):
                return 404, {"code": 404, "message": f"Kernel '{kernel}' has no version {version}"}, None
            ref = 1000 + len(self.submissions)
            self.submissions.append({"ref": ref, "fileName": body.get("fileName", "submission.csv"),
                                     "description": body.get("submissionDescription", ""),
                                     "date": "2024-01-01T00:00:00.000Z", "status": "PENDING", "polls": 0,
                                     "kernel": kernel, "kernelVersion": int(version)})
            return 200, {"message": "Your kernel submission was queued", "ref": ref}, None
        if name == "ListSubmissions":
            items = []
            for sub in reversed(self.submissions):
                sub["polls"] += 1
                if sub["status"] == "PENDING" and sub["polls"] >= self.polls_to_score:
                    sub["status"] = "ERROR" if self.scoring_error else "COMPLETE"
                item = {k: v for k, v in sub.items() if k not in ("polls", "kernel", "kernelVersion")}
                if item["status"] == "COMPLETE":
                    public, private = self.scores.get(sub["ref"], (self.score, ""))
                    item.update(publicScore=public, privateScore=private)
                if item["status"] == "ERROR":
                    item["errorDescription"] = self.scoring_error
                items.append(item)
            return 200, {"submissions": items[: body.get("pageSize") or 20]}, None
        if name == "GetSubmissionLimits":
            return 200, {"numToday": len(self.submissions), "numAllowedNow": 5}, None
        if name == "DownloadDataFiles":
            return 302, None, f"/files/{self.competition}.zip"
        if name == "DownloadDataFile":
            file_name = body.get("fileName", "")
            for served in (file_name, f"{file_name}.zip"):  # Kaggle may send a single file zipped
                if served in self.files:
                    return 302, None, f"/files/{served}"
            return 404, {"code": 404, "message": f"File '{file_name}' not found"}, None
        return 404, {"code": 404, "message": f"unknown method {name}"}, None

    def file_bytes(self, name: str) -> bytes | None:
        if name == f"{self.competition}.zip":
            return self.zip_bytes()
        if name.startswith("kernel-output/"):
            owner, slug, file_name = name.removeprefix("kernel-output/").split("/", 2)
            found = self.kernels.get(f"{owner}/{slug}")
            return None if found is None else found["outputs"].get(file_name)
        return self.files.get(name)

    # ------------------------------------------------------------ blobs and datasets

    def _forbidden(self, owner: str, what: str):
        if owner != self.username:
            return 403, {"code": 403, "message": f"Permission '{what}' was denied"}, None
        return None

    def _StartBlobUpload(self, body):
        token = f"dataset-blob-{len(self.blobs)}"
        self.blobs[token] = {"name": body.get("name", ""), "contentLength": int(body.get("contentLength") or 0),
                             "type": body.get("type", "")}
        return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, None

    def _files(self, files) -> tuple[dict | None, list[str]]:
        """The uploaded files named by `files` ([{token}]), or an error answer."""
        names = []
        for item in files or []:
            token = item.get("token", "")
            if token not in self.uploads or token not in self.blobs:
                return {"ref": "", "url": "", "status": "error", "error": f"Unknown blob token {token!r}"}, []
            names.append(self.blobs[token]["name"])
        return None, names

    def dataset_files(self, ref: str, version: int = -1) -> dict[str, bytes]:
        """The files of a dataset version as uploaded (folders arrive as archives), by name."""
        tokens = self.datasets[ref]["versions"][version]["tokens"]
        return {self.blobs[token]["name"]: self.uploads[token] for token in tokens}

    def _GetDatasetStatus(self, body):
        ref = f"{body.get('ownerSlug', '')}/{body.get('datasetSlug', '')}"
        found = self.datasets.get(ref)
        if found is None:
            return 404, {"code": 404, "message": f"Dataset '{ref}' not found"}, None
        found["polls"] += 1
        ready = self.polls_to_ready is not None and found["polls"] >= self.polls_to_ready
        return 200, {"status": "READY" if ready else "BLOBS_RECEIVED"}, None

    def _CreateDataset(self, body):
        owner, slug = body.get("ownerSlug", ""), body.get("slug", "")
        forbidden = self._forbidden(owner, "datasets.create")
        if forbidden:
            return forbidden
        ref = f"{owner}/{slug}"
        if ref in self.taken_slugs or ref in self.datasets:
            return 200, {"ref": "", "url": "", "status": "error",
                         "error": f"The requested slug \"{slug}\" is already in use by a dataset. "
                                  "Please choose another slug."}, None
        error, names = self._files(body.get("files"))
        if error:
            return 200, error, None
        self.datasets[ref] = {"title": body.get("title"), "licenseName": body.get("licenseName"),
                              "isPrivate": body.get("isPrivate", False), "polls": 0,
                              "versions": [{"notes": "", "tokens": [f["token"] for f in body.get("files") or []],
                                            "names": names}]}
        return 200, {"ref": f"/datasets/{ref}", "url": f"{self.url}/datasets/{ref}", "status": "ok",
                     "error": ""}, None

    def _CreateDatasetVersion(self, body):
        owner, slug = body.get("ownerSlug", ""), body.get("datasetSlug", "")
        forbidden = self._forbidden(owner, "datasets.update")
        if forbidden:
            return forbidden
        ref = f"{owner}/{slug}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": f"Dataset '{ref}' not found"}, None
        request = body.get("body") or {}
        error, names = self._files(request.get("files"))
        if error:
            return 200, error, None
        self.datasets[ref]["versions"].append({"notes": request.get("versionNotes", ""), "names": names,
                                               "tokens": [f["token"] for f in request.get("files") or []]})
        self.datasets[ref]["polls"] = 0
        return 200, {"ref": f"/datasets/{ref}", "url": f"{self.url}/datasets/{ref}", "status": "ok",
                     "error": ""}, None

    # ------------------------------------------------------------ kernels

    def _SaveKernel(self, body):
        ref = str(body.get("slug") or "")
        owner = ref.split("/")[0]
        forbidden = self._forbidden(owner, "kernels.create")
        if forbidden:
            return forbidden
        invalid = [source for source in body.get("datasetDataSources") or [] if source not in self.datasets]
        invalid_competitions = [c for c in body.get("competitionDataSources") or [] if c != self.competition]
        invalid_kernels = [k for k in body.get("kernelDataSources") or [] if k not in self.kernels]
        kernel = self.kernels.setdefault(ref, {"versions": []})
        kernel["versions"].append(body)
        if self.kernel_job is not None:
            ok, log, outputs = self.kernel_job(ref, body)
        else:
            runner = self.kernel_run or (lambda text: (True, "kit infer: wrote /kaggle/working/submission.csv\n",
                                                       dict(self.kernel_outputs)))
            ok, log, outputs = runner(body.get("text", ""))
        kernel.update(status="COMPLETE" if ok else "ERROR", log=log, outputs=outputs if ok else {}, polls=0,
                      failure="" if ok else "Your notebook tried to run, but it failed (see the log)")
        return 200, {"ref": f"/code/{ref}", "url": f"{self.url}/code/{ref}", "versionNumber": len(kernel["versions"]),
                     "error": "", "invalidTags": [], "invalidDatasetSources": invalid,
                     "invalidCompetitionSources": invalid_competitions, "invalidKernelSources": invalid_kernels,
                     "invalidModelSources": []}, None

    def _kernel(self, body):
        return f"{body.get('userName', '')}/{body.get('kernelSlug', '')}"

    def _GetKernelSessionStatus(self, body):
        kernel = self.kernels.get(self._kernel(body))
        if kernel is None:
            return 404, {"code": 404, "message": f"Kernel '{self._kernel(body)}' not found"}, None
        kernel["polls"] += 1
        if kernel["polls"] < self.polls_to_finish:
            return 200, {"status": KERNEL_STATES[min(kernel["polls"], len(KERNEL_STATES)) - 1]}, None
        return 200, {"status": kernel["status"], "failureMessage": kernel["failure"]}, None

    def _ListKernelSessionOutput(self, body):
        ref = self._kernel(body)
        kernel = self.kernels.get(ref)
        if kernel is None:
            return 404, {"code": 404, "message": f"Kernel '{ref}' not found"}, None
        log = json.dumps([{"stream_name": "stdout", "time": 0.5 + i, "data": line}
                          for i, line in enumerate(kernel["log"].splitlines(keepends=True))])
        files = [{"url": f"{self.url}/files/kernel-output/{ref}/{name}", "fileName": name}
                 for name in sorted(kernel["outputs"])]  # names may hold folders: runs/<model>/fold<k>/best.pt
        start = int(body.get("pageToken") or 0)
        size = self.output_page_size or len(files) or 1
        more = start + size < len(files)
        return 200, {"files": files[start:start + size], "log": log if start == 0 else "",
                     "nextPageToken": str(start + size) if more else ""}, None


def _handler(stand_in: StandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
        timeout = 10

        def log_message(self, *args):  # keep test output clean
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _receive(self, name: str) -> Received | None:
            """Record the request; None if a queued fault dropped the connection (already answered)."""
            received = Received(self.command, name, self.path, dict(self.headers), self._body())
            with stand_in._lock:
                stand_in.requests.append(received)
                queue = stand_in.faults.get(name) or []
                fault = queue.pop(0) if queue else None
            if fault == "drop":
                self.close_connection = True
                return None
            if fault is not None:
                self._send(int(fault), {"code": int(fault), "message": f"stand-in fault {fault}"})
                return None
            return received

        def _send(self, status: int, payload: dict | None = None, data: bytes | None = None,
                  headers: dict | None = None) -> None:
            body = json.dumps(payload).encode() if payload is not None else (data or b"")
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if payload is not None else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            if not self.path.startswith(API_PREFIX):
                self._send(404, {"code": 404, "message": "not found"})
                return
            route = self.path[len(API_PREFIX):].split("?")[0]
            name = ROUTES.get(route, route.rsplit("/", 1)[-1])
            received = self._receive(name)
            if received is None:
                return
            if route not in ROUTES:
                self._send(404, {"code": 404, "message": f"no such service method {route}"})
                return
            try:
                body = received.json()
            except ValueError:
                self._send(400, {"code": 400, "message": "body is not JSON"})
                return
            with stand_in._lock:
                status, payload, redirect = stand_in.api(name, body, self.headers)
            if redirect is not None:
                self._send(302, data=b"", headers={"Location": f"{stand_in.url}{redirect}"})
            else:
                self._send(status, payload)

        def do_PUT(self):
            received = self._receive("upload")
            if received is None:
                return
            token = self.path.rsplit("/", 1)[-1]
            with stand_in._lock:
                stand_in.uploads[token] = received.body
            self._send(200, {})

        def do_GET(self):
            received = self._receive("files")
            if received is None:
                return
            data = stand_in.file_bytes(self.path.removeprefix("/files/"))
            if data is None:
                self._send(404, {"code": 404, "message": "no such file"})
                return
            self._send(200, data=data, headers={"Last-Modified": formatdate(1_700_000_000, usegmt=True)})

    return Handler


if __name__ == "__main__":  # pragma: no cover - a manual check: serve an empty competition until Ctrl-C
    import time

    with StandIn() as server:
        print(f"stand-in Kaggle API on {server.url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------- pytest fixtures (import them in a test module)

try:
    import pytest
except ImportError:  # pragma: no cover - the server itself needs only the standard library
    pytest = None

if pytest is not None:
    import os

    PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")

    def _clean_environment(mp, home):
        for key in list(os.environ):
            if key.startswith(("KAGGLE_", "KIT_KAGGLE_")) or key.lower() in PROXY_VARIABLES:
                mp.delenv(key)
        mp.setenv("HOME", str(home))
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")

    @pytest.fixture(scope="session")
    def kaggle_api_class(tmp_path_factory):
        """The kit's KaggleApi class. `import kaggle` authenticates at import time: do it once, without credentials."""
        home = tmp_path_factory.mktemp("kaggle-home")
        with pytest.MonkeyPatch.context() as mp:
            _clean_environment(mp, home)
            from kit.kaggle.client import api_class

            return api_class()

    @pytest.fixture
    def stand_in():
        """A stand-in server (not started): configure it, then use the `kaggle` fixture."""
        return StandIn()

    @pytest.fixture
    def kaggle(stand_in, kaggle_api_class, monkeypatch, tmp_path):
        """`stand_in`, running, with the kit pointed at it: KAGGLE_API_ENVIRONMENT=TEST, legacy credentials in
        KAGGLE_USERNAME/KAGGLE_KEY, an empty HOME, fast retries. The server stops when the test ends.

        kagglesdk maps TEST to http://localhost:7777, a fixed port; the server takes a free port instead and the
        SDK's table entry for TEST is pointed at it, so parallel test runs cannot collide.
        """
        from kagglesdk import kaggle_env

        home = tmp_path / "home"
        (home / ".kaggle").mkdir(parents=True)
        _clean_environment(monkeypatch, home)
        monkeypatch.setattr(kaggle_api_class, "config_dir", str(home / ".kaggle"))
        monkeypatch.setattr(kaggle_api_class, "config", str(home / ".kaggle" / "kaggle.json"))
        monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
        monkeypatch.setenv("KAGGLE_USERNAME", stand_in.username)
        monkeypatch.setenv("KAGGLE_KEY", stand_in.key)
        monkeypatch.setenv("KIT_KAGGLE_RETRIES", "3")
        monkeypatch.setenv("KIT_KAGGLE_BACKOFF", "0.001")
        monkeypatch.setenv("KIT_KAGGLE_POLL", "0.01")
        with stand_in:
            monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, stand_in.url)
            yield stand_in
