"""A real local HTTP server speaking the few GitHub REST endpoints corral calls.

Pull requests (list by head/state, create, update) and refs (get, create). Like GitHub,
creating a second open PR for the same head answers 422, so a client that is not
idempotent shows up as an error, and `pulls` lets a test count what exists.

    with FakeGitHub(token="t") as gh:
        env = {"GITHUB_TOKEN": "t", "CORRAL_GITHUB_API": gh.url, "CORRAL_GITHUB_REPO": "o/r"}
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PULLS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls(?:/(?P<number>\d+))?$")
_REF = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/refs?(?:/(?P<ref>.+))?$")


class FakeGitHub:
    """In-memory pulls and refs per repo; `requests` records (method, path) in order."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.pulls: dict[str, list[dict[str, Any]]] = {}
        self.refs: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def open_pulls(self, repo: str) -> list[dict[str, Any]]:
        return [p for p in self.pulls.get(repo, []) if p["state"] == "open"]

    # -- the API -----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            m = _PULLS.match(path)
            if m:
                return self._pulls(method, m["repo"], m["number"], query, body)
            m = _REF.match(path)
            if m:
                return self._refs(method, m["repo"], m["ref"], body)
        return 404, {"message": "Not Found"}

    def _pulls(
        self, method: str, repo: str, number: str | None, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        pulls = self.pulls.setdefault(repo, [])
        owner = repo.split("/")[0]
        if method == "GET" and number is None:
            head = query.get("head", [None])[0]
            state = query.get("state", ["open"])[0]
            found = [
                p for p in pulls
                if (head is None or f"{owner}:{p['head']['ref']}" == head)
                and (state == "all" or p["state"] == state)
            ]  # fmt: skip
            return 200, found
        if method == "POST" and number is None:
            if not isinstance(body, dict) or not {"title", "head", "base"} <= body.keys():
                return 422, {"message": "Validation Failed"}
            if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in pulls):
                return 422, {"message": "A pull request already exists for " + body["head"]}
            n = sum(len(v) for v in self.pulls.values()) + 1
            pr = {
                "number": n, "state": "open", "title": body["title"], "body": body.get("body"),
                "head": {"ref": body["head"]}, "base": {"ref": body["base"]},
                "html_url": f"https://github.example/{repo}/pull/{n}",
            }  # fmt: skip
            pulls.append(pr)
            return 201, pr
        if number is not None:
            hits = [p for p in pulls if p["number"] == int(number)]
            if not hits:
                return 404, {"message": "Not Found"}
            pr = hits[0]
            if method == "PATCH" and isinstance(body, dict):
                pr.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return 200, pr
        return 405, {"message": "Method Not Allowed"}

    def _refs(self, method: str, repo: str, ref: str | None, body: Any) -> tuple[int, Any]:
        refs = self.refs.setdefault(repo, {})
        if method == "GET" and ref:
            name = f"refs/{ref}"
            if name not in refs:
                return 404, {"message": "Not Found"}
            return 200, {"ref": name, "object": {"sha": refs[name], "type": "commit"}}
        if method == "POST" and isinstance(body, dict) and "ref" in body and "sha" in body:
            if body["ref"] in refs:
                return 422, {"message": "Reference already exists"}
            refs[body["ref"]] = body["sha"]
            return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}
        if method == "PATCH" and ref and isinstance(body, dict) and "sha" in body:
            refs[f"refs/{ref}"] = body["sha"]
            return 200, {"ref": f"refs/{ref}", "object": {"sha": body["sha"]}}
        return 422, {"message": "Validation Failed"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _go(self) -> None:
                auth = self.headers.get("Authorization", "")
                if auth not in (f"Bearer {fake.token}", f"token {fake.token}"):
                    self._send(401, {"message": "Bad credentials"})
                    return
                parts = urlsplit(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size) if size else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    self._send(400, {"message": "Problems parsing JSON"})
                    return
                status, out = fake.handle(self.command, parts.path, parse_qs(parts.query), body)
                self._send(status, out)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _go

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
