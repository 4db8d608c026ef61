"""A stand-in for the Hugging Face hub: enough for `huggingface_hub.hf_hub_download`, which timm's
`pretrained=True` calls, so `kit weights` runs for real against it, offline.

Standard library only, on 127.0.0.1, port 0 (a free one). It serves, for each repository in `repos`
({"timm/test_resnet.r160_in1k": {"model.safetensors": bytes, "config.json": bytes}}):

  HEAD/GET /<repo>/resolve/<revision>/<file>   -> the bytes, with X-Repo-Commit, ETag and Content-Length
                                                  (what hf_hub_download reads); 404 with X-Error-Code:
                                                  EntryNotFound for a file the repository lacks (timm then
                                                  tries the next name), RepoNotFound for another repository.

Every request is recorded in `requests` as (method, path). Point HF_ENDPOINT at `url`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from local_server import LocalServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubStandIn(LocalServer):
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def __post_init__(self):
        self.requests: list[tuple[str, str]] = []

    def _handler_class(self):
        return _handler(self)

    def lookup(self, path: str) -> tuple[int, bytes | None, str]:
        """(status, bytes, error code) for /<owner>/<name>/resolve/<revision>/<file>."""
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, None, "RepoNotFound"
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if repo not in self.repos:
            return 404, None, "RepoNotFound"
        data = self.repos[repo].get(filename)
        return (200, data, "") if data is not None else (404, None, "EntryNotFound")


def _handler(hub: HubStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def _answer(self, with_body: bool):
            hub.requests.append((self.command, self.path))
            status, data, error = hub.lookup(self.path)
            self.send_response(status)
            if data is None:
                self.send_header("X-Error-Code", error)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

    return Handler
