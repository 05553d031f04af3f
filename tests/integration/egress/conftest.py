"""Real local servers for the egress tests: plain HTTP and TLS (self-signed) on 127.0.0.1.

The proxy refuses loopback addresses; these tests reach them only through a resolver that
maps `*.test` names to 127.0.0.1 and a profile with the test-only private-address override.
"""

from __future__ import annotations

import http.server
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.security.docker_support import ensure_image, needs_docker

from corral.sandbox.egress import EgressProfile

BIG = b"x" * 200_000


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the Docker image once, before any test's timeout starts (cached by tag)."""
    if needs_docker(session.items):
        ensure_image()


@dataclass
class Server:
    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.seen.append(
                {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            if self.path == "/big":
                body, kind = BIG, "application/octet-stream"
            elif self.path == "/docs":
                body = (
                    b"<html><head><title>Guide</title><style>.x{}</style></head><body>"
                    b"<h1>Install</h1><p>Run   the <code>setup</code> step.</p><script>evil()</script>"
                    b"<ul><li>one</li><li>two</li></ul><pre>pip install x\n  --flag</pre></body></html>"
                )
                kind = "text/html; charset=utf-8"
            else:
                body, kind = b"hello from the allowed host\n", "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _serve(wrap: ssl.SSLContext | None = None) -> Iterator[Server]:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    srv.daemon_threads = True
    info = Server(srv.server_address[1])
    srv.RequestHandlerClass = _handler(info)
    if wrap is not None:
        srv.socket = wrap.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield info
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-subj", "/CN=docs.test", "-addext", "subjectAltName=DNS:docs.test,DNS:other.test",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    (d / "cert.pem").chmod(0o644)
    d.chmod(0o755)
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(scope="module")
def tls_server(cert: tuple[Path, Path]) -> Iterator[Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    yield from _serve(ctx)


async def fake_resolver(host: str, port: int) -> list[str]:
    """`*.test` → 127.0.0.1, `internal.corp` → a private address, others unknown."""
    if host == "internal.corp":
        return ["10.20.30.40"]
    if host == "metadata.test":
        return ["169.254.169.254"]
    if host.endswith(".test"):
        return ["127.0.0.1"]
    raise OSError(f"cannot resolve {host}")


def local_profile(*ports: int, **kw: object) -> EgressProfile:
    data: dict[str, object] = {"allow": ("docs.test", "*.mirror.test", "metadata.test"),
                               "ports": ports, "allow_private_addresses": True, **kw}  # fmt: skip
    return EgressProfile.model_validate(data)
