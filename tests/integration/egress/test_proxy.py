"""The egress proxy over its Unix socket, against real local HTTP and TLS servers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.egress.conftest import Server, fake_resolver, local_profile

from corral.sandbox.egress import EgressChannel, EgressProfile, EgressProxy


@pytest.fixture
async def proxy() -> AsyncIterator[EgressProxy]:
    async with EgressProxy(resolver=fake_resolver) as p:
        yield p


async def _ask(ch: EgressChannel, request: str) -> bytes:
    r, w = await asyncio.open_unix_connection(str(ch.socket_path))
    w.write(request.encode())
    await w.drain()
    data = await asyncio.wait_for(r.read(), 10)
    w.close()
    return data


async def _settled(ch: EgressChannel, n: int = 1) -> None:
    """A request is recorded when its connection ends, just after the client is done."""
    for _ in range(200):
        if len(ch.records) >= n:
            return
        await asyncio.sleep(0.01)


def _get(url: str, *headers: str) -> str:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {url} HTTP/1.1\r\nHost: x\r\n{extra}Connection: keep-alive\r\n\r\n"


async def test_allowed_plain_http_gets_credentials_the_client_never_sees(
    proxy: EgressProxy, http_server: Server
) -> None:
    cred = {"host": "docs.test", "header": "Authorization", "value": "Bearer s3cr3t-index-token"}
    ch = await proxy.open_channel(local_profile(http_server.port, credentials=[cred]), "att-1")
    out = await _ask(ch, _get(f"http://docs.test:{http_server.port}/simple", "Authorization: mine"))
    assert out.startswith(b"HTTP/1.0 200") and b"hello from the allowed host" in out
    assert b"s3cr3t" not in out
    seen = http_server.seen[-1]
    assert seen["authorization"] == "Bearer s3cr3t-index-token"  # replaced, not appended
    assert seen["path"] == "/simple" and seen["connection"] == "close"
    await _settled(ch)
    (rec,) = ch.records
    assert rec.allowed and rec.attempt_id == "att-1" and rec.host == "docs.test"
    assert rec.bytes_down > 0 and rec.address == "127.0.0.1"


@pytest.mark.parametrize(
    ("allow_private", "request_line", "why"),
    [
        (True, "GET http://127.0.0.1:{port}/ HTTP/1.1", "raw IP address 127.0.0.1"),
        (True, "CONNECT 127.0.0.1:5432 HTTP/1.1", "raw IP address 127.0.0.1"),
        (True, "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1", "raw IP address"),
        (True, "GET http://metadata.test:{port}/ HTTP/1.1", "cloud metadata address"),
        (False, "CONNECT docs.test:{port} HTTP/1.1", "127.0.0.1 is loopback"),
        (False, "GET http://internal.corp:{port}/ HTTP/1.1", "10.20.30.40 is a private address"),
        (True, "CONNECT docs.test:5432 HTTP/1.1", "port 5432 is not allowed"),
        (True, "GET http://other.test:{port}/ HTTP/1.1", "not on this task's egress allowlist"),
        (True, "GET http://mirror.test:{port}/ HTTP/1.1", "not on this task's egress allowlist"),
        (True, "GET http://badmirror.test:{port}/ HTTP/1.1", "not on this task's egress allowlist"),
        (
            True,
            "GET http://nowhere.invalid:{port}/ HTTP/1.1",
            "not on this task's egress allowlist",
        ),
    ],
)
async def test_denials(
    proxy: EgressProxy, http_server: Server, allow_private: bool, request_line: str, why: str
) -> None:
    port = http_server.port
    profile = local_profile(port, allow_private_addresses=allow_private)
    profile = profile.model_copy(update={"allow": (*profile.allow, "internal.corp")})
    ch = await proxy.open_channel(profile, "att-2")
    before = len(http_server.seen)
    out = await _ask(ch, request_line.format(port=port) + "\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403"), out[:200]
    assert why in out.decode()
    (rec,) = ch.records
    assert not rec.allowed and why in rec.reason
    assert len(http_server.seen) == before  # nothing reached the server


async def test_wildcard_allows_subdomains_only(proxy: EgressProxy, http_server: Server) -> None:
    ch = await proxy.open_channel(local_profile(http_server.port), "att-3")
    out = await _ask(ch, _get(f"http://files.mirror.test:{http_server.port}/"))
    assert b"hello from the allowed host" in out


async def test_closed_profile_says_the_network_is_closed(proxy: EgressProxy) -> None:
    ch = await proxy.open_channel(EgressProfile(), "att-4")
    out = await _ask(ch, "CONNECT pypi.org:443 HTTP/1.1\r\n\r\n")
    assert b"403" in out.split(b"\r\n")[0] and b"network is closed for this task" in out


def _client_ctx(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    return ctx


async def _tls_get(ch: EgressChannel, target: str, sni: str, cert: Path) -> bytes:
    r, w = await asyncio.open_unix_connection(str(ch.socket_path))
    w.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    await asyncio.wait_for(w.start_tls(_client_ctx(cert), server_hostname=sni), 10)
    w.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 10)
    w.close()
    return data


async def test_connect_with_matching_sni_reaches_the_tls_server(
    proxy: EgressProxy, tls_server: Server, cert: tuple[Path, Path]
) -> None:
    ch = await proxy.open_channel(local_profile(tls_server.port), "att-5")
    out = await _tls_get(ch, f"docs.test:{tls_server.port}", "docs.test", cert[0])
    assert b"hello from the allowed host" in out
    await _settled(ch)
    assert ch.records[-1].allowed and ch.records[-1].method == "CONNECT"


async def test_connect_whose_sni_differs_from_its_target_is_cut(
    proxy: EgressProxy, tls_server: Server, cert: tuple[Path, Path]
) -> None:
    ch = await proxy.open_channel(local_profile(tls_server.port), "att-6")
    before = len(tls_server.seen)
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, OSError)):
        await _tls_get(ch, f"docs.test:{tls_server.port}", "other.test", cert[0])
    (rec,) = ch.records
    assert not rec.allowed
    assert "TLS server name other.test does not match CONNECT target docs.test" in rec.reason
    assert len(tls_server.seen) == before


async def test_connect_without_tls_is_refused(proxy: EgressProxy, tls_server: Server) -> None:
    ch = await proxy.open_channel(local_profile(tls_server.port), "att-7")
    r, w = await asyncio.open_unix_connection(str(ch.socket_path))
    w.write(f"CONNECT docs.test:{tls_server.port} HTTP/1.1\r\n\r\nSSH-2.0-x\r\n".encode())
    data = await asyncio.wait_for(r.read(), 10)
    w.close()
    assert data == b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert not ch.records[-1].allowed and "no readable TLS" in ch.records[-1].reason


async def test_byte_cap_cuts_a_download_and_refuses_what_follows(
    proxy: EgressProxy, http_server: Server
) -> None:
    ch = await proxy.open_channel(local_profile(http_server.port, byte_cap=50_000), "att-8")
    out = await _ask(ch, _get(f"http://docs.test:{http_server.port}/big"))
    assert 40_000 < len(out) <= 50_000  # what fit under the cap, then the cut
    await _settled(ch)
    assert "byte cap" in ch.records[-1].reason and ch.used == 50_000
    again = await _ask(ch, _get(f"http://docs.test:{http_server.port}/"))
    assert again.startswith(b"HTTP/1.1 403") and b"byte cap" in again
