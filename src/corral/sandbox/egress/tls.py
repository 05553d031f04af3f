"""Read the server name (SNI) from a TLS ClientHello without terminating TLS.

Why: a CONNECT to an allowed host could carry a TLS session to any other name served
from the same address (domain fronting). The proxy reads the client's first flight,
compares its server name with the CONNECT target, and only then forwards those same
bytes upstream. A ClientHello may span several records; we reassemble up to a cap.
"""

from __future__ import annotations

import asyncio
import struct

MAX_HELLO = 64 * 1024
_HANDSHAKE, _CLIENT_HELLO, _SERVER_NAME, _HOST_NAME = 22, 1, 0, 0


class NotTLS(ValueError):
    """The bytes after a CONNECT were not a TLS ClientHello we could read."""


async def read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, str | None]:
    """Read whole TLS records until the ClientHello is complete.

    Returns the raw bytes read (to forward as they are) and the SNI host name, if any.
    """
    raw = b""
    handshake = b""
    while True:
        head = await reader.readexactly(5)
        kind, _version, length = struct.unpack("!BHH", head)
        if kind != _HANDSHAKE or length == 0 or length > 18 * 1024:
            raise NotTLS("not a TLS handshake record")
        body = await reader.readexactly(length)
        raw += head + body
        handshake += body
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise NotTLS("the first handshake message is not a ClientHello")
            need = 4 + int.from_bytes(handshake[1:4], "big")
            if need > MAX_HELLO:
                raise NotTLS("ClientHello too large")
            if len(handshake) >= need:
                return raw, server_name(handshake[4:need])


def server_name(hello: bytes) -> str | None:
    """The host_name entry of the server_name extension of a ClientHello body."""
    try:
        pos = 2 + 32  # legacy_version, random
        pos += 1 + hello[pos]  # session id
        pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
        pos += 1 + hello[pos]  # compression methods
        if pos > len(hello):
            raise IndexError(pos)
        if pos == len(hello):
            return None  # no extensions at all
        end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            ext, size = struct.unpack("!HH", hello[pos : pos + 4])
            pos += 4
            if ext == _SERVER_NAME:
                return _host_name(hello[pos : pos + size])
            pos += size
    except (IndexError, struct.error):
        raise NotTLS("malformed ClientHello") from None
    return None


def _host_name(data: bytes) -> str | None:
    pos = 2  # server_name_list length
    while pos + 3 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 3], "big")
        name = data[pos + 3 : pos + 3 + size]
        if kind == _HOST_NAME:
            try:
                return name.decode("ascii").rstrip(".").lower()
            except UnicodeDecodeError:
                raise NotTLS("server name is not ASCII") from None
        pos += 3 + size
    return None
