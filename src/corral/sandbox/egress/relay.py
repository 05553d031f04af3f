"""Runs *inside* a sandbox: 127.0.0.1:3128 → the egress proxy's Unix socket.

Why a relay: bwrap's network namespace holds only loopback, and pip, git and curl speak
to an HTTP proxy by host and port, not by socket path. This file is bind-mounted
read-only into the sandbox and started by the system Python (`-I -S`: no site, no
user paths) before the agent's shell. It binds first and then forks, so the port is
open before any command runs. It decides nothing: the host proxy enforces every rule.
Standard library only; it never imports corral.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys

SOCKET = "/run/corral/egress.sock"
PORT = 3128


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()


async def _handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    try:
        up_r, up_w = await asyncio.open_unix_connection(SOCKET)
    except OSError:
        client_w.close()
        return
    outbound = asyncio.ensure_future(_pipe(client_r, up_w))
    await _pipe(up_r, client_w)  # the proxy closed: the answer is complete
    outbound.cancel()
    for w in (up_w, client_w):
        w.close()


async def _serve(sock: socket.socket) -> None:
    server = await asyncio.start_server(_handle, sock=sock)
    async with server:
        await server.serve_forever()


def main() -> None:
    os.closerange(3, 4096)  # nothing of the shell's plumbing stays open in the daemon
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else PORT
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    if os.fork() > 0:
        os._exit(0)  # the parent returns once the port is open; the child serves
    asyncio.run(_serve(sock))


if __name__ == "__main__":
    main()
