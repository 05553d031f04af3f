"""A small HTTP/1.1 server on asyncio streams, over TCP or a Unix socket.

The gateway's face is reached by agent CLIs inside sandboxes through a Unix socket bound
into the sandbox, so it needs a server that can listen on one, hold hundreds of
keep-alive connections on one loop, and add no dependency. The fake provider in
`corral.testing` serves on it too, using `drop` to cut a connection (fault injection).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

__all__ = ["HttpRequest", "HttpResponse", "HttpServer"]

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    drop: bool = False  # close the connection without sending anything


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _BadRequest(Exception):
    pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > MAX_BODY:
                raise _BadRequest("body too large")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest("bad content-length") from None
    if length < 0 or length > MAX_BODY:
        raise _BadRequest("bad content-length")
    return await reader.readexactly(length) if length else b""


async def _read_request(reader: asyncio.StreamReader) -> tuple[HttpRequest, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise _BadRequest("bad request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest("bad header line")
            headers[name.strip().lower()] = value.strip()
    body = await _read_body(reader, headers)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    path, _, query = target.partition("?")
    return HttpRequest(method.upper(), path, query, headers, body), keep_alive


def _encode(response: HttpResponse, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    headers = {
        "content-type": response.content_type,
        "content-length": str(len(response.body)),
        "connection": "keep-alive" if keep_alive else "close",
        **response.headers,
    }
    head = [f"HTTP/1.1 {response.status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


class HttpServer:
    """Serves `handler` on a Unix socket (`path`, mode 0600 by default) or host:port."""

    def __init__(
        self,
        handler: Handler,
        *,
        path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: int = 0o600,
    ) -> None:
        self.handler = handler
        self.path = Path(path) if path is not None else None
        self.host = host
        self.port = port
        self.mode = mode
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"unix:{self.path}" if self.path is not None else f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.path is not None:
            if self.path.is_socket():
                self.path.unlink()  # a stale socket from a previous run
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), backlog=2048, limit=MAX_HEAD
            )
            os.chmod(self.path, self.mode)
        else:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, backlog=2048, limit=MAX_HEAD
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    request, keep_alive = await _read_request(reader)
                except _BadRequest as exc:
                    body = f'{{"error": {{"message": "{exc}"}}}}'.encode()
                    writer.write(_encode(HttpResponse(400, body), keep_alive=False))
                    await writer.drain()
                    return
                response = await self.handler(request)
                if response.drop:
                    return
                writer.write(_encode(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage
        except asyncio.CancelledError:
            pass  # shutdown; end normally (3.11 would log a cancelled stream callback)
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._connections.discard(task)
