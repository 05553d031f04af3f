"""A real local HTTP server speaking the GitLab merge-request endpoints corral calls.

List (by source branch and state), create, update. Like GitLab, a second open merge
request from the same source branch answers 409, so a client that is not idempotent
shows up as an error; `merge_requests` lets a test count what exists.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_MRS = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests(?:/(?P<iid>\d+))?$")


class FakeGitLab:
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.merge_requests: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/v4"

    def __enter__(self) -> FakeGitLab:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            m = _MRS.match(path)
            if m is None:
                return 404, {"message": "404 Not Found"}
            mrs = self.merge_requests.setdefault(unquote(m["project"]), [])
            iid = m["iid"]
            if method == "GET" and iid is None:
                branch = query.get("source_branch", [None])[0]
                state = query.get("state", [None])[0]
                return 200, [
                    r for r in mrs
                    if (branch is None or r["source_branch"] == branch)
                    and (state is None or r["state"] == state)
                ]  # fmt: skip
            if method == "POST" and iid is None:
                if any(r["source_branch"] == body["source_branch"] and r["state"] == "opened"
                       for r in mrs):  # fmt: skip
                    return 409, {"message": ["Another open merge request already exists"]}
                mr = {"iid": len(mrs) + 1, "state": "opened", **body}
                mr["web_url"] = (
                    f"https://gitlab.example/{m['project']}/-/merge_requests/{mr['iid']}"
                )
                mrs.append(mr)
                return 201, mr
            if method == "PUT" and iid is not None:
                for r in mrs:
                    if r["iid"] == int(iid):
                        r.update(body)
                        return 200, r
                return 404, {"message": "404 Not found"}
            return 405, {"message": "method not allowed"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.headers.get("PRIVATE-TOKEN") != fake.token:
                    self._send(401, {"message": "401 Unauthorized"})
                    return
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, out = fake.handle(self.command, parts.path, parse_qs(parts.query), body)
                self._send(status, out)

            def _send(self, status: int, out: Any) -> None:
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler
