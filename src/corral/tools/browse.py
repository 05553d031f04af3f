"""The `browse` tool: read a documentation page as plain text, through the egress proxy.

Why host-side: the fetch runs in the host process but goes through the sandbox's own
egress socket, so the same allowlist, address checks, byte cap and audit apply as to
`curl` inside the sandbox, and nothing from the page is executed. HTML is reduced to
headings, paragraphs, lists, links and code blocks; scripts and styles are dropped and
the text is capped. Without an egress channel (the default) the answer is that the
network is closed for this task.

A sandbox offers its channel as an `egress_socket` attribute (a host path, or None).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from corral.domain import ToolError, ToolResult
from corral.ports import Sandbox
from corral.tools.base import Args, parse_args, tool_spec

CLOSED = (
    "browse: the network is closed for this task (no egress rule allows any host); "
    "work from the repository and what is installed"
)
_SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "object", "head"}
_BLOCK = {"p", "div", "section", "article", "header", "footer", "main", "nav", "aside",
          "table", "tr", "blockquote", "dl", "dt", "dd", "ul", "ol", "form", "figure",
          "hr", "br", "details", "summary"}  # fmt: skip


class BrowseArgs(Args):
    url: str = Field(description="An http:// or https:// URL of a page to read.")


class _Text(HTMLParser):
    """HTML → readable text with light markdown (#, -, ```)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._pre = 0
        self._in_title = False
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skip += 1
        elif self._skip:
            return
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "pre":
            self._pre += 1
            self.out.append("\n\n```\n")
        elif tag == "code" and not self._pre:
            self.out.append("`")
        elif tag == "a":
            self._href = dict(attrs).get("href")
            self.out.append("[")
        elif tag in _BLOCK:
            self.out.append("\n\n" if tag not in {"br", "tr", "dt", "dd"} else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif re.fullmatch(r"h[1-6]", tag) or tag in _BLOCK:
            self.out.append("\n")
        elif tag == "pre" and self._pre:
            self._pre -= 1
            self.out.append("\n```\n\n")
        elif tag == "code" and not self._pre:
            self.out.append("`")
        elif tag == "a":
            href, self._href = self._href, None
            self.out.append(f"]({href})" if href and href.startswith("http") else "]")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        self.out.append(data if self._pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        body = "".join(self.out)
        body = re.sub(r"\[\s*\]\([^)]*\)|\[\s*\]", "", body)  # empty links
        body = re.sub(r"[ \t]+\n", "\n", body)
        body = re.sub(r"\n{3,}", "\n\n", body).strip()
        title = re.sub(r"\s+", " ", self.title).strip()
        return f"# {title}\n\n{body}" if title and not body.startswith("#") else body


def html_to_text(html: str) -> str:
    parser = _Text()
    with contextlib.suppress(Exception):  # malformed HTML: keep what was parsed
        parser.feed(html)
        parser.close()
    return parser.text()


class BrowseTool:
    """Fetches a URL through the sandbox's egress proxy and returns readable text."""

    name = "browse"

    def __init__(
        self, *, max_chars: int = 20_000, max_bytes: int = 3_000_000, timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.max_chars, self.max_bytes, self.timeout = max_chars, max_bytes, timeout
        self.ssl_context = ssl_context
        self.spec = tool_spec(
            self.name,
            (
                "Read a web page (documentation, a changelog) as plain text. Only hosts "
                "this task's egress rules allow can be reached; otherwise the network is "
                f"closed. Text is cut after {max_chars} characters."
            ),
            BrowseArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, BrowseArgs, args)
        socket_path: Path | None = getattr(sandbox, "egress_socket", None)
        if socket_path is None:
            raise ToolError(CLOSED)
        url = a.url.strip()
        for _ in range(6):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ToolError(f"browse: {url!r} is not an http(s) URL")
            try:
                async with asyncio.timeout(self.timeout):
                    status, headers, body = await self._fetch(socket_path, url)
            except TimeoutError:
                raise ToolError(f"browse: {url} did not answer within {self.timeout:g} s") from None
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError) as e:
                raise ToolError(f"browse: {url}: {e.__class__.__name__}: {e}") from None
            if status in {301, 302, 303, 307, 308} and "location" in headers:
                url = urljoin(url, headers["location"])
                continue
            break
        else:
            raise ToolError(f"browse: too many redirects from {a.url}")
        return self._render(url, status, headers, body)

    def _render(self, url: str, status: int, headers: dict[str, str], body: bytes) -> ToolResult:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        charset = re.search(r"charset=([\w-]+)", headers.get("content-type", ""))
        try:
            text = body.decode(charset[1] if charset else "utf-8", errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        if "html" in kind or (not kind and "<html" in text[:500].lower()):
            text = html_to_text(text)
        elif kind and not (kind.startswith("text/") or "json" in kind or "xml" in kind):
            text = f"({kind} content, {len(body)} bytes, not shown)"
        if status == 403 and text.startswith("corral egress proxy: denied"):
            closed = "network is closed" in text
            raise ToolError(CLOSED if closed else f"browse: {text.strip()}")
        truncated = len(text) > self.max_chars
        if truncated:
            text = text[: self.max_chars] + f"\n[... cut at {self.max_chars} characters]"
        head = f"{url} (HTTP {status})\n\n"
        return ToolResult(output=head + text, is_error=status >= 400, truncated=truncated)

    async def _fetch(self, sock: Path, url: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        reader, writer = await asyncio.open_unix_connection(str(sock))
        try:
            target = url.split("#", 1)[0]
            if tls:
                writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                             .encode())  # fmt: skip
                status, headers = await _read_head(reader)
                if status != 200:
                    return status, headers, await _read_body(reader, headers, self.max_bytes)
                ctx = self.ssl_context or ssl.create_default_context()
                await writer.start_tls(ctx, server_hostname=host)
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = host if port in (80, 443) else f"{host}:{port}"
            writer.write(
                f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: corral-browse/1\r\n"
                "Accept: text/html, text/plain;q=0.9, */*;q=0.5\r\n"
                "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode()
            )
            status, headers = await _read_head(reader)
            return status, headers, await _read_body(reader, headers, self.max_bytes)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = b""
        while len(out) < cap:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out += await reader.readexactly(size)
            await reader.readline()
        return out[:cap]
    length = headers.get("content-length")
    if length and length.isdigit():
        return await reader.readexactly(min(int(length), cap))
    out = b""
    while len(out) < cap and (chunk := await reader.read(min(65536, cap - len(out)))):
        out += chunk
    return out
