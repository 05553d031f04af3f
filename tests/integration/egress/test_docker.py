"""Egress from inside a real Docker sandbox: the container keeps `--network none`; the
proxy's socket and the relay are bound in, as for bwrap. Python (the image has no curl)
reaches allowed hosts through the relay; everything else is denied and audited."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.egress.conftest import Server, fake_resolver, local_profile
from tests.security.docker_support import require_docker

from corral.domain import ToolCall
from corral.orchestrator.policy import AuditService
from corral.orchestrator.policy.audit import AuditStore
from corral.sandbox import DockerSandbox, SandboxLimits, SandboxPool, open_sandbox
from corral.sandbox.docker_engine import docker
from corral.sandbox.egress import EgressProxy
from corral.sandbox.egress.bind import SOCKET_INNER
from corral.store import Store
from corral.tools import Toolbox
from corral.tools.browse import BrowseTool

LIMITS = SandboxLimits(memory_mb=256, pids=128, default_timeout=20)
TOKEN = "Bearer idx-token-docker-0123456789"
FETCH = """import ssl, sys, urllib.error, urllib.request
url = sys.argv[1]
ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
try:
    with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
        body = r.read()
        print("STATUS", r.status, len(body))
        print(body[:200].decode(errors="replace"))
except urllib.error.HTTPError as e:
    print("STATUS", e.code)
    print(e.read().decode(errors="replace"))
except Exception as e:
    print("ERROR", type(e).__name__, e)
"""


@pytest.fixture
def repo(tmp_path: Path, cert: tuple[Path, Path]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "fetch.py").write_text(FETCH)
    (path / "ca.pem").write_bytes(cert[0].read_bytes())
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = await Store.open(home=tmp_path / ".corral")
    yield db
    await db.close()


@pytest.fixture
async def proxy(store: Store) -> AsyncIterator[EgressProxy]:
    require_docker()
    async with EgressProxy(resolver=fake_resolver, on_record=AuditService(store).egress) as p:
        yield p


async def test_docker_reaches_only_allowed_hosts_through_the_proxy(
    proxy: EgressProxy, store: Store, repo: Path, http_server: Server, tls_server: Server
) -> None:
    cred = {"host": "docs.test", "value": TOKEN}
    profile = local_profile(http_server.port, tls_server.port, credentials=[cred])
    ch = await proxy.open_channel(profile, "att-docker")
    async with DockerSandbox(repo, limits=LIMITS, egress=ch) as sb:
        assert sb.container_id is not None
        net = await docker("inspect", "--format", "{{.HostConfig.NetworkMode}}", sb.container_id)
        assert net.strip() == "none"
        plain = await sb.exec(f"python3 fetch.py http://docs.test:{http_server.port}/", 20)
        assert "STATUS 200" in plain.output and "hello from the allowed host" in plain.output
        assert http_server.seen[-1]["authorization"] == TOKEN  # injected on the host side
        tls = await sb.exec(f"python3 fetch.py https://docs.test:{tls_server.port}/ ca.pem", 20)
        assert "hello from the allowed host" in tls.output, tls.output
        # the token never enters the container: not its env, its files, its config
        leak = await sb.exec(
            "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
            "grep -rs idx-toke[n] /run /workspace /tmp /home; true", 20
        )  # fmt: skip
        inspect = await docker("inspect", sb.container_id)
        assert "idx-token" not in leak.output + plain.output + tls.output + inspect
        assert "http_proxy=http://127.0.0.1:3128" in leak.output
        denied = {
            "other": f"http://other.test:{http_server.port}/",
            "rawip": f"http://127.0.0.1:{http_server.port}/",
            "port": "http://docs.test:5432/",
            "meta": "http://169.254.169.254/latest/meta-data/",
            "meta-name": f"http://metadata.test:{http_server.port}/",
        }
        for name, url in denied.items():
            # no_proxy would send 127.0.0.1 straight out; ask the relay explicitly
            env = "no_proxy= NO_PROXY= " if name == "rawip" else ""
            out = (await sb.exec(f"{env}python3 fetch.py {url}", 20)).output
            assert "STATUS 403" in out and "corral egress proxy: denied" in out, (name, out)
        tunnel = await sb.exec(f"python3 fetch.py https://other.test:{tls_server.port}/ ca.pem")
        assert (
            "STATUS 200" not in tunnel.output and "Tunnel connection failed: 403" in tunnel.output
        )
        # past the proxy there is no network at all: direct connections and DNS fail
        direct = await sb.exec(
            f"no_proxy='*' python3 fetch.py http://127.0.0.1:{http_server.port}/; "
            "python3 -c 'import socket; socket.getaddrinfo(\"pypi.org\", 443)' 2>&1 | tail -1", 20
        )  # fmt: skip
        assert "ERROR" in direct.output and "hello" not in direct.output
        assert "gaierror" in direct.output
        # a command timeout sweeps the container's processes but spares the relay
        slow = await sb.exec("sleep 30", 1)
        assert slow.timed_out
        again = await sb.exec(f"python3 fetch.py http://docs.test:{http_server.port}/", 20)
        assert "hello from the allowed host" in again.output
    records = [(r.host, r.allowed) for r in ch.records]
    assert ("docs.test", True) in records and ("other.test", False) in records
    assert ("127.0.0.1", False) in records and ("169.254.169.254", False) in records
    assert ("metadata.test", False) in records
    audited = [e async for e in AuditStore(store).entries(kind="egress")]
    assert len(audited) == len(ch.records)  # every request, allowed or not
    assert all(e.attempt_id == "att-docker" and e.who == "egress-proxy" for e in audited)
    assert {(e.detail["host"], e.detail["allowed"]) for e in audited} == set(records)
    assert all("idx-token" not in str(e.detail) for e in audited)


async def test_docker_byte_cap_cuts_downloads_and_refuses_more(
    proxy: EgressProxy, repo: Path, http_server: Server
) -> None:
    ch = await proxy.open_channel(local_profile(http_server.port, byte_cap=50_000), "att-cap")
    async with DockerSandbox(repo, limits=LIMITS, egress=ch) as sb:
        big = await sb.exec(f"python3 fetch.py http://docs.test:{http_server.port}/big", 20)
        assert "STATUS 200 200000" not in big.output, big.output
        assert ch.used == 50_000 and "byte cap" in ch.records[-1].reason
        more = await sb.exec(f"python3 fetch.py http://docs.test:{http_server.port}/", 20)
        assert "STATUS 403" in more.output and "byte cap" in more.output
    assert ch.used == 50_000


async def test_browse_works_in_docker(
    proxy: EgressProxy, repo: Path, http_server: Server, tls_server: Server,
    cert: tuple[Path, Path],
) -> None:  # fmt: skip
    ch = await proxy.open_channel(local_profile(http_server.port, tls_server.port), "att-b")
    tool = BrowseTool(ssl_context=ssl.create_default_context(cafile=str(cert[0])))
    async with open_sandbox("docker", repo, limits=LIMITS, egress=ch) as sb:
        page = await tool.run(sb, {"url": f"http://docs.test:{http_server.port}/docs"})
        assert not page.is_error and "# Install" in page.output
        tls = await tool.run(sb, {"url": f"https://docs.test:{tls_server.port}/"})
        assert "hello from the allowed host" in tls.output
        call = ToolCall(id="1", name="browse", arguments={"url": "http://other.test/"})
        refused = await Toolbox([tool]).run(sb, call)
        assert refused.is_error and "not on this task's egress allowlist" in refused.output
    assert any(r.host == "docs.test" and r.allowed for r in ch.records)


async def test_pooled_docker_containers_stay_closed_and_egress_boots_its_own(
    proxy: EgressProxy, repo: Path, http_server: Server
) -> None:
    ch = await proxy.open_channel(local_profile(http_server.port), "att-pool")
    async with SandboxPool("docker", size=1, limits=LIMITS) as pool:
        await pool.wait_full(120)
        async with open_sandbox("docker", repo, limits=LIMITS, egress=ch) as sb:
            out = await sb.exec(f"python3 fetch.py http://docs.test:{http_server.port}/", 20)
            assert "hello from the allowed host" in out.output
        closed = await pool.claim(repo)  # a pooled one: no socket, no proxy env, no network
        try:
            probe = await closed.exec(
                f"ls {SOCKET_INNER} 2>&1; env | grep -ci proxy; "
                f"python3 fetch.py http://docs.test:{http_server.port}/", 20
            )  # fmt: skip
        finally:
            await closed.close()
        assert "No such file" in probe.output and "\n0\n" in probe.output
        assert "ERROR" in probe.output and "hello" not in probe.output
