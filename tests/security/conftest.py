"""Security suite fixtures: every test runs against bwrap and Docker; the network cases
also run with an egress profile open (a channel to a host-side proxy)."""

from __future__ import annotations

import http.server
import os
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from corral.sandbox import BaseSandbox, SandboxLimits, open_sandbox
from corral.sandbox.egress import EgressChannel, EgressProfile, EgressProxy

from .docker_support import ensure_image, needs_docker, require_docker

LIMITS = SandboxLimits(memory_mb=256, pids=128, default_timeout=20, workspace_mb=64, tmp_mb=32)
CANARY = "corral-canary-7f3a9c"
KEY = "sk-canary-0123456789abcdef"
BACKENDS = ["bwrap", "docker"]
EGRESS_BACKENDS = ["bwrap-egress", "docker-egress"]
# The egress credential the proxy adds for the allowed host: a secret like any other.
TOKEN = "Bearer idx-canary-5e1d0c0ffee"


def pytest_collection_finish(session: pytest.Session) -> None:
    if needs_docker(session.items):
        ensure_image()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "app.py").write_text("x = 1\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1"}
    import subprocess

    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


class Watched:
    """Every output a test saw, so teardown can assert no canary ever came out."""

    def __init__(self) -> None:
        self.outputs: list[str] = []


async def start_box(
    kind: str, repo: Path, watched: Watched | None = None, egress: EgressChannel | None = None
) -> BaseSandbox:
    if kind == "docker":
        require_docker()
    box = open_sandbox(kind, repo, limits=LIMITS, egress=egress)
    await box.start()
    if watched is not None:
        exec_ = box.exec

        async def recording(command: str, timeout: float | None = None):  # type: ignore[no-untyped-def]
            result = await exec_(command, timeout)
            watched.outputs.append(result.output)
            return result

        box.exec = recording  # type: ignore[method-assign]
    return box


@pytest.fixture(params=BACKENDS)
async def box(
    request: pytest.FixtureRequest, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BaseSandbox]:
    monkeypatch.setenv("CORRAL_CANARY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    watched = Watched()
    sb = await start_box(request.param, repo, watched)
    try:
        yield sb
    finally:
        await sb.close()
    for out in watched.outputs:
        assert CANARY not in out and KEY not in out


@dataclass
class Allowed:
    """The one allowed host (a local server standing in) and what reached it."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def allowed_host() -> Iterator[Allowed]:
    info = Allowed(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            info.seen.append({k.lower(): v for k, v in self.headers.items()})
            body = b"allowed host says hi\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    info.port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield info
    srv.shutdown()
    srv.server_close()


async def resolve(host: str, port: int) -> list[str]:
    """`allowed.test` stands in for a real host on loopback; `metadata.test` rebinds."""
    table = {"allowed.test": "127.0.0.1", "metadata.test": "169.254.169.254"}
    if host in table:
        return [table[host]]
    raise OSError(f"cannot resolve {host}")


@pytest.fixture(params=BACKENDS + EGRESS_BACKENDS)
async def net_box(
    request: pytest.FixtureRequest, repo: Path, monkeypatch: pytest.MonkeyPatch,
    allowed_host: Allowed,
) -> AsyncIterator[BaseSandbox]:  # fmt: skip
    """A sandbox with no network, or with a profile open to `allowed.test` only."""
    monkeypatch.setenv("CORRAL_CANARY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    kind, _, egress = str(request.param).partition("-")
    watched = Watched()
    async with EgressProxy(resolver=resolve) as proxy:
        channel = None
        if egress:
            # Test-only override: the stand-in lives on loopback. Only its port is allowed.
            profile = EgressProfile.model_validate({
                "name": "docs", "allow": ["allowed.test", "metadata.test"],
                "ports": [allowed_host.port], "allow_private_addresses": True,
                "credentials": [{"host": "allowed.test", "value": TOKEN}],
            })  # fmt: skip
            channel = await proxy.open_channel(profile, "att-security")
        sb = await start_box(kind, repo, watched, channel)
        try:
            yield sb
        finally:
            await sb.close()
    for out in watched.outputs:
        assert CANARY not in out and KEY not in out and TOKEN not in out
