"""A minimal HTTP/1.1 server on asyncio streams, just enough for JSON APIs.

Why not http.server: one event loop serves hundreds of keep-alive connections cheaply,
and handlers can `await` (latency) without holding a thread each. Why not a framework:
no new dependencies for a test fake. Supports Content-Length and chunked request
bodies, keep-alive, and a way to drop a connection without answering (fault injection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

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


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > MAX_BODY:
            raise _BadRequest("body too large")


async def _read_request(reader: asyncio.StreamReader) -> tuple[HttpRequest, bool]:
    """One request and whether the client wants the connection kept open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise _BadRequest("bad request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest("bad content-length") from None
        if length < 0 or length > MAX_BODY:
            raise _BadRequest("bad content-length")
        body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    path, _, query = target.partition("?")
    return HttpRequest(method.upper(), path, query, headers, body), keep_alive


def _encode(response: HttpResponse, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    head = [f"HTTP/1.1 {response.status} {reason}"]
    headers = {
        "content-type": response.content_type,
        "content-length": str(len(response.body)),
        "connection": "keep-alive" if keep_alive else "close",
        **response.headers,
    }
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


class HttpServer:
    """Serves `handler` on host:port (port 0 picks a free one) in the running loop."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, backlog=2048, limit=MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage; nothing to answer
        except asyncio.CancelledError:
            # Shutdown. End normally: on 3.11 asyncio's stream callback calls
            # task.exception() and would log a spurious error for a cancelled task.
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            # Only now: close() must be able to wait for this task until it is really done.
            self._connections.discard(task)
            self._writers.discard(writer)

    async def _serve_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
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
