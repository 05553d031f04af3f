"""Egress from inside a real bwrap sandbox: curl through the relay and the host proxy,
the browse tool on the same channel, and no network at all without one."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.egress.conftest import Server, fake_resolver, local_profile

from corral.domain import ToolCall
from corral.sandbox import BwrapSandbox, SandboxLimits
from corral.sandbox.egress import EgressChannel, EgressProxy
from corral.tools import Toolbox
from corral.tools.browse import CLOSED, BrowseTool

LIMITS = SandboxLimits(memory_mb=512, pids=128, default_timeout=20)
TOKEN = "Bearer idx-token-0123456789abcdef"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "README.md").write_text("# demo\n")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


@pytest.fixture
async def proxy() -> AsyncIterator[EgressProxy]:
    async with EgressProxy(resolver=fake_resolver) as p:
        yield p


async def _channel(proxy: EgressProxy, *ports: int) -> EgressChannel:
    cred = {"host": "docs.test", "value": TOKEN}
    return await proxy.open_channel(local_profile(*ports, credentials=[cred]), "att-sb")


async def test_curl_inside_bwrap_reaches_only_allowed_hosts(
    proxy: EgressProxy, repo: Path, http_server: Server, tls_server: Server,
    cert: tuple[Path, Path],
) -> None:  # fmt: skip
    ch = await _channel(proxy, http_server.port, tls_server.port)
    (repo / "ca.pem").write_bytes(cert[0].read_bytes())
    async with BwrapSandbox(repo, limits=LIMITS, egress=ch) as sb:
        plain = await sb.exec(f"curl -sS http://docs.test:{http_server.port}/", 20)
        assert "hello from the allowed host" in plain.output
        assert http_server.seen[-1]["authorization"] == TOKEN  # injected on the host side
        tls = await sb.exec(f"curl -sS --cacert ca.pem https://docs.test:{tls_server.port}/", 20)
        assert "hello from the allowed host" in tls.output, tls.output
        # the token never enters the sandbox: not in its env, files or answers
        leak = await sb.exec("env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'", 20)
        assert "idx-token" not in leak.output + plain.output + tls.output
        assert "http_proxy=http://127.0.0.1:3128" in leak.output
        denied = {
            "other": f"curl -sS http://other.test:{http_server.port}/",
            "rawip": f"curl -sS http://127.0.0.1:{http_server.port}/ --noproxy '' --proxy http://127.0.0.1:3128",
            "pg": "curl -sS --max-time 5 http://127.0.0.1:5432/ --noproxy '' --proxy http://127.0.0.1:3128",
            "meta": "curl -sS --max-time 5 http://169.254.169.254/latest/meta-data/",
        }
        for name, cmd in denied.items():
            out = (await sb.exec(cmd, 20)).output
            assert "corral egress proxy: denied" in out, (name, out)
        # past the proxy there is no network at all
        direct = await sb.exec(
            f"curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{http_server.port}/", 20
        )
        assert direct.exit_code != 0 and "hello" not in direct.output
        # a command timeout sweeps the sandbox's processes but spares the relay
        slow = await sb.exec("sleep 30", 1)
        assert slow.timed_out
        again = await sb.exec(f"curl -sS http://docs.test:{http_server.port}/", 20)
        assert "hello from the allowed host" in again.output
    records = [(r.host, r.allowed) for r in ch.records]
    assert ("docs.test", True) in records and ("other.test", False) in records
    assert ("127.0.0.1", False) in records and ("169.254.169.254", False) in records


async def test_browse_reads_allowed_pages_as_text(
    proxy: EgressProxy, repo: Path, http_server: Server, tls_server: Server,
    cert: tuple[Path, Path],
) -> None:  # fmt: skip
    import ssl

    ch = await _channel(proxy, http_server.port, tls_server.port)
    tool = BrowseTool(ssl_context=ssl.create_default_context(cafile=str(cert[0])))
    box = Toolbox([tool])
    async with BwrapSandbox(repo, limits=LIMITS, egress=ch) as sb:
        page = await tool.run(sb, {"url": f"http://docs.test:{http_server.port}/docs"})
        assert not page.is_error
        text = page.output
        assert "# Install" in text and "Run the `setup` step." in text
        assert "- one\n- two" in text and "```\npip install x\n  --flag\n```" in text
        assert "evil()" not in text and ".x{}" not in text
        tls = await tool.run(sb, {"url": f"https://docs.test:{tls_server.port}/"})
        assert "hello from the allowed host" in tls.output
        call = ToolCall(id="1", name="browse", arguments={"url": "http://other.test/"})
        refused = await box.run(sb, call)
        assert refused.is_error and "not on this task's egress allowlist" in refused.output
    assert any(r.host == "docs.test" and r.allowed for r in ch.records)


async def test_without_a_channel_the_network_is_closed(repo: Path) -> None:
    async with BwrapSandbox(repo, limits=LIMITS) as sb:
        res = await Toolbox([BrowseTool()]).run(
            sb, ToolCall(id="1", name="browse", arguments={"url": "https://pypi.org/"})
        )
        assert res.is_error and CLOSED in res.output
        out = await sb.exec("env | grep -ci proxy; curl -sS --max-time 3 http://pypi.org/", 10)
        assert out.output.startswith("0") and out.exit_code != 0
        assert json.dumps(out.output)  # a plain, readable failure
