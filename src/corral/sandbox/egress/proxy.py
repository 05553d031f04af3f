"""The host-side egress proxy: HTTP and CONNECT, one Unix socket per sandbox.

Why one socket per sandbox: the socket a request arrives on *is* the sandbox's identity,
so nothing the sandbox says can make it another attempt, borrow another's allowlist or
escape its byte cap. The socket is bind-mounted into the sandbox, whose network
namespace has only loopback; a relay inside (see `relay.py`) turns 127.0.0.1:3128 into
that socket, so ordinary clients (pip, curl, git) work through `http(s)_proxy`.

Per request: the target must be a host name on the profile's allowlist and an allowed
port; the name is resolved once here and every address checked; a CONNECT must carry
TLS whose server name equals the target; plain-HTTP requests get the profile's
credentials added on the way out (the sandbox never sees them; a CONNECT tunnel is
opaque, so tokens for TLS hosts are used by the orchestrator on the host instead, e.g.
`git push` with a credential helper outside the sandbox); bytes in both directions count
against the sandbox's cap; every request becomes an `EgressRecord` for the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from corral.sandbox.base import SANDBOX_UID
from corral.sandbox.egress.rules import EgressProfile, address_problem, is_ip_literal
from corral.sandbox.egress.tls import NotTLS, read_client_hello

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
RecordHook = Callable[["EgressRecord"], Awaitable[None] | None]

_MAX_HEAD = 64 * 1024
_PHRASES = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large"}
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
        "proxy-authenticate", "te", "trailer", "upgrade"}  # fmt: skip


@dataclass(frozen=True)
class EgressRecord:
    """One request through the proxy, allowed or not (what the audit log stores)."""

    attempt_id: str | None
    method: str
    host: str
    port: int
    allowed: bool
    reason: str
    address: str | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def detail(self) -> dict[str, object]:
        return {"method": self.method, "host": self.host, "port": self.port,
                "allowed": self.allowed, "reason": self.reason, "address": self.address,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down}  # fmt: skip


class _Denied(Exception):
    pass


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressChannel:
    """One sandbox's way out: its socket, its profile, its byte budget."""

    def __init__(self, proxy: EgressProxy, profile: EgressProfile, attempt_id: str | None,
                 path: Path) -> None:  # fmt: skip
        self.proxy, self.profile, self.attempt_id = proxy, profile, attempt_id
        self.socket_path = path
        self.used = 0
        self.records: list[EgressRecord] = []
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def cap_reached(self) -> bool:
        return self.used >= self.profile.byte_cap

    def charge(self, n: int) -> int:
        """Count up to `n` bytes against the cap; returns how many may flow."""
        allowed = max(0, min(n, self.profile.byte_cap - self.used))
        self.used += allowed
        return allowed

    async def start(self, owner: tuple[int, int] | None) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.socket_path))
        if owner is not None:
            os.chown(self.socket_path, *owner)
        os.chmod(self.socket_path, 0o600)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(_Request(self, reader, writer).serve())
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def record(self, rec: EgressRecord) -> None:
        self.records.append(rec)
        del self.records[:-1000]
        if self.proxy.on_record is not None:
            try:
                maybe = self.proxy.on_record(rec)
                if maybe is not None:
                    await maybe
            except Exception:  # auditing must not break the sandbox's request
                log.exception("egress audit hook failed")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
        self.proxy.channels.discard(self)


class EgressProxy:
    """Serves any number of channels from this process's event loop."""

    def __init__(self, *, resolver: Resolver | None = None, on_record: RecordHook | None = None,
                 connect_timeout: float = 10.0, idle_timeout: float = 120.0) -> None:  # fmt: skip
        self.resolver = resolver or system_resolver
        self.on_record = on_record
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.channels: set[EgressChannel] = set()
        self._dir: Path | None = None

    async def open_channel(
        self, profile: EgressProfile, attempt_id: str | None = None
    ) -> EgressChannel:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="corral-egress-"))
            os.chmod(self._dir, 0o711)  # bwrap (as the sandbox uid) must reach the socket
        path = self._dir / f"{uuid.uuid4().hex[:16]}.sock"
        channel = EgressChannel(self, profile, attempt_id, path)
        owner = (SANDBOX_UID, SANDBOX_UID) if os.geteuid() == 0 else None
        await channel.start(owner)
        self.channels.add(channel)
        return channel

    async def close(self) -> None:
        for channel in list(self.channels):
            await channel.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def __aenter__(self) -> EgressProxy:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class _Request:
    """One client connection: one request (plain HTTP) or one tunnel (CONNECT)."""

    def __init__(self, ch: EgressChannel, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.ch, self.reader, self.writer = ch, reader, writer
        self.method, self.host, self.port = "?", "?", 0
        self.address: str | None = None
        self.rule = ""
        self.up = self.down = 0

    async def serve(self) -> None:
        try:
            await self._serve()
        except (_Denied, ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _serve(self) -> None:
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 15)
        except asyncio.LimitOverrunError:
            await self._deny("request head too large", 431)
        if len(head) > _MAX_HEAD:
            await self._deny("request head too large", 431)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await self._deny("malformed request line", 400)
        self.method, target, _ = parts
        if self.method == "CONNECT":
            host, _, port = target.rpartition(":")
            self.host, self.port = host.strip("[]").lower(), _int(port)
            await self._check()
            await self._tunnel()
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await self._deny("only http:// URLs or CONNECT for https", 400)
            self.host, self.port = url.hostname.lower(), url.port or 80
            await self._check()
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            await self._forward(self._rewrite(lines[1:], path))

    async def _check(self) -> None:
        """Allowlist, port, one resolution, address checks; raises _Denied via _deny."""
        profile = self.ch.profile
        if self.ch.cap_reached:
            await self._deny(f"the egress byte cap of {profile.byte_cap} bytes is used up")
        if profile.closed:
            await self._deny("the network is closed for this task (no egress rule)")
        if is_ip_literal(self.host):
            await self._deny(f"raw IP address {self.host} is not allowed; use a host name")
        rule = profile.rule_for(self.host)
        if rule is None:
            await self._deny(f"host {self.host} is not on this task's egress allowlist")
        if self.port not in profile.ports:
            await self._deny(f"port {self.port} is not allowed (allowed: {profile.ports})")
        try:
            addrs = await asyncio.wait_for(self.ch.proxy.resolver(self.host, self.port), 10)
        except (OSError, TimeoutError) as e:
            await self._deny(f"cannot resolve {self.host}: {e.__class__.__name__}")
        if not addrs:
            await self._deny(f"cannot resolve {self.host}")
        for addr in addrs:
            why = address_problem(addr, allow_private=profile.allow_private_addresses)
            if why:
                await self._deny(f"{self.host} resolves to {why}")
        self.address = addrs[0]
        self.rule = rule

    async def _deny(self, reason: str, status: int = 403) -> NoReturn:
        body = f"corral egress proxy: denied: {reason}\n".encode()
        with contextlib.suppress(ConnectionError):
            self.writer.write(
                f"HTTP/1.1 {status} {_PHRASES.get(status, 'Forbidden')}\r\n"
                "Content-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await self.writer.drain()
        await self._record(False, reason)
        raise _Denied(reason)

    async def _record(self, allowed: bool, reason: str) -> None:
        await self.ch.record(EgressRecord(
            self.ch.attempt_id, self.method, self.host, self.port, allowed, reason,
            self.address, self.up, self.down,
        ))  # fmt: skip

    def _rewrite(self, headers: list[str], path: str) -> bytes:
        cred = self.ch.profile.credential_for(self.host)
        out = [f"{self.method} {path} HTTP/1.1"]
        default = 80
        out.append(f"Host: {self.host}" + (f":{self.port}" if self.port != default else ""))
        for line in headers:
            if not line or ":" not in line:
                continue
            name = line.split(":", 1)[0].strip().lower()
            if name in _HOP or name == "host" or (cred and name == cred.header.lower()):
                continue
            out.append(line)
        if cred is not None and cred.value:
            out.append(f"{cred.header}: {cred.value}")
        out.append("Connection: close")
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.address is not None
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.address, self.port), self.ch.proxy.connect_timeout
            )
        except (OSError, TimeoutError) as e:
            await self._record(False, f"connect to {self.address}:{self.port} failed: {e}")
            raise ConnectionError from None

    async def _tunnel(self) -> None:
        self.writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await self.writer.drain()
        try:
            hello, sni = await asyncio.wait_for(read_client_hello(self.reader), 15)
        except NotTLS as e:
            await self._record(False, f"CONNECT carries no readable TLS ClientHello ({e})")
            return
        if sni != self.host:
            why = f"TLS server name {sni or '(none)'} does not match CONNECT target {self.host}"
            await self._record(False, why)
            return
        up_r, up_w = await self._open()
        await self._relay(up_r, up_w, hello)

    async def _forward(self, head: bytes) -> None:
        up_r, up_w = await self._open()
        await self._relay(up_r, up_w, head)

    async def _relay(
        self, up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter, first: bytes
    ) -> None:
        reason = f"allowed by rule {self.rule}"
        try:
            if self.ch.charge(len(first)) < len(first):
                raise _CapReached
            self.up += len(first)
            up_w.write(first)
            outbound = asyncio.ensure_future(self._copy(self.reader, up_w, "up"))
            inbound = asyncio.ensure_future(self._copy(up_r, self.writer, "down"))
            done, _ = await asyncio.wait({outbound, inbound}, return_when=asyncio.FIRST_COMPLETED)
            if outbound in done and outbound.exception() is None:
                await inbound  # the client finished sending; the answer still comes
            for task in (outbound, inbound):
                task.cancel()
            results = await asyncio.gather(outbound, inbound, return_exceptions=True)
            if any(isinstance(r, _CapReached) for r in results):
                raise _CapReached
        except _CapReached:
            reason = f"cut: the egress byte cap of {self.ch.profile.byte_cap} bytes was reached"
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            reason += " (connection ended early)"
        finally:
            up_w.close()
            await self._record(True, reason)

    async def _copy(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
        while True:
            data = await asyncio.wait_for(src.read(65536), self.ch.proxy.idle_timeout)
            if not data:
                if dst.can_write_eof():
                    with contextlib.suppress(OSError):
                        dst.write_eof()
                return
            allowed = self.ch.charge(len(data))
            if way == "up":
                self.up += allowed
            else:
                self.down += allowed
            dst.write(data[:allowed])
            await dst.drain()
            if allowed < len(data):
                raise _CapReached


class _CapReached(Exception):
    pass


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
