"""How the gateway reaches a provider: one `call` that returns a completion and headers.

`HttpUpstream` speaks OpenAI chat-completions over a small keep-alive pool of asyncio
streams. It exists because the gateway's hot path carries a whole fleet's traffic and
httpx's pool costs seconds per few hundred concurrent requests; plain streams cost
milliseconds. Error mapping is shared with `corral.models` (same messages, same
ContextWindowExceeded). `ModelUpstream` wraps any other `Model` (LiteLLM, scripted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from corral.domain import Completion, Message, ProviderError, ToolSpec
from corral.gateway.wire import WirePrompt
from corral.models.openai_compat import error_from_response
from corral.models.openai_format import one_line, parse_response
from corral.ports import Model

__all__ = ["Answer", "HttpUpstream", "ModelUpstream", "Upstream"]

Answer = tuple[Completion, dict[str, str]]
_MAX_HEAD = 64 * 1024


class Upstream(Protocol):
    name: str
    context_window: int

    async def call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        max_tokens: int,
        prompt: WirePrompt | None = None,
    ) -> Answer:
        """`prompt`: the same messages and tools already encoded, when the caller has it."""
        ...

    async def aclose(self) -> None: ...


class _StaleConnection(Exception):
    """A pooled connection the server had closed; safe to retry on a fresh one."""


class HttpUpstream:
    """POST {base_url}/chat/completions with the key this process holds."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None,
        context_window: int = 128_000,
        max_connections: int = 1024,
        unix_socket: str | None = None,
    ) -> None:
        """`unix_socket`: connect there instead of to the URL's host (a gateway service)."""
        parts = urlsplit(base_url.rstrip("/"))
        self._unix = unix_socket
        self.name = f"openai-compatible:{base_url.rstrip('/')}#{model}"
        self.model = model
        self.context_window = context_window
        self._host = parts.hostname or "127.0.0.1"
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._path = (parts.path or "") + "/chat/completions"
        self._authority = parts.netloc
        self._api_key = api_key
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    def __repr__(self) -> str:  # never show the key
        return f"HttpUpstream({self.name!r})"

    def _request(self, body: bytes, api_key: str | None) -> bytes:
        head = [
            f"POST {self._path} HTTP/1.1",
            f"Host: {self._authority}",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Content-Length: {len(body)}",
        ]
        if api_key:
            head.append(f"Authorization: Bearer {api_key}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    async def call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        max_tokens: int,
        prompt: WirePrompt | None = None,
        api_key: str | None = None,
    ) -> Answer:
        """`api_key`: this call's key instead of the upstream's own (a gateway token)."""
        prompt = prompt or WirePrompt(messages, tools)
        raw = self._request(prompt.body(self.model, max_tokens), api_key or self._api_key)
        started = time.monotonic()
        async with self._slots:
            try:
                status, headers, body = await self._exchange(raw, reuse=True)
            except _StaleConnection:
                status, headers, body = await self._exchange(raw, reuse=False)
        latency = time.monotonic() - started
        if status >= 400:
            response = httpx.Response(status, headers=list(headers.items()), content=body)
            raise error_from_response(self.name, response)
        try:
            data = json.loads(body)
        except ValueError:
            raise ProviderError(
                f"{self.name}: malformed response: body is not JSON: "
                f"{one_line(body.decode('utf-8', 'replace'), 120)}",
                status=status,
                headers=headers,
            ) from None
        completion = parse_response(data, source=self.name)
        update = {"latency_s": latency, "model": completion.model or self.model}
        return completion.model_copy(update=update), headers

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self._unix is not None:
                return await asyncio.open_unix_connection(self._unix, limit=_MAX_HEAD)
            return await asyncio.open_connection(
                self._host,
                self._port,
                ssl=ssl.create_default_context() if self._tls else None,
                limit=_MAX_HEAD,
            )
        except OSError as exc:
            detail = one_line(str(exc)) or type(exc).__name__
            raise ProviderError(f"{self.name}: cannot reach {self._authority}: {detail}") from None

    async def _exchange(self, raw: bytes, *, reuse: bool) -> tuple[int, dict[str, str], bytes]:
        pooled = reuse and bool(self._idle)
        reader, writer = self._idle.pop() if pooled else await self._open()
        keep = False
        try:
            writer.write(raw)
            await writer.drain()
            status, headers, body, keep = await _read_response(reader)
            return status, headers, body
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            if pooled and isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
                if not getattr(exc, "partial", b""):
                    raise _StaleConnection from None
            raise ProviderError(
                f"{self.name}: the connection closed without an answer ({type(exc).__name__})"
            ) from None
        finally:
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return status, headers, bytes(body), keep
    if "content-length" in headers:
        length = int(headers["content-length"])
        return status, headers, await reader.readexactly(length) if length else b"", keep
    return status, headers, await reader.read(), False


class ModelUpstream:
    """Any `Model` (LiteLLM, scripted, ...) as an upstream; headers come from errors only."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = model.name
        self.context_window = model.context_window

    async def call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        max_tokens: int,
        prompt: WirePrompt | None = None,
    ) -> Answer:
        if hasattr(self.model, "max_tokens"):
            self.model.max_tokens = max_tokens
        return await self.model.complete(messages, tools), {}

    async def aclose(self) -> None:
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()
