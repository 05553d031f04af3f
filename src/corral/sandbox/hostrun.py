"""Short host-side scripts (git on a workspace's baseline), started by the launcher.

Why: an asyncio subprocess costs this process pipe transports, a child-watcher thread
and a spawn on its event loop; every attempt runs two git scripts (baseline and diff),
and at a thousand agents that was a fifth of the event loop's time. The launcher starts
them instead, and their output is read here straight from the pipes. The launcher reaps
its children itself, so the script reports its own exit status on fd 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence

from corral.domain import SandboxError
from corral.sandbox.launcher import LaunchError, launcher

_CHUNK = 1 << 16


async def run_sh(body: str, args: Sequence[str], env: dict[str, str], *, name: str) -> str:
    """Run `body` under `sh` with `set -e` and positional `args`; its stdout, or a
    SandboxError naming `name` and the last line it wrote to stderr."""
    script = f"( set -e\n{body}\n)\necho $? >&3\n"
    fds = [os.pipe() for _ in range(3)]  # stdout, stderr, status
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        launched = await launcher(None).spawn(
            ["/bin/sh", "-c", script, "sh", *args],
            env,
            {0: devnull, 1: fds[0][1], 2: fds[1][1], 3: fds[2][1]},
            setsid=True,
        )
    except LaunchError as exc:
        for r, w in fds:
            os.close(r)
            os.close(w)
        raise SandboxError(f"{name} failed: cannot start it: {exc}") from None
    finally:
        os.close(devnull)
    for _, w in fds:
        os.close(w)
    try:
        out, err, status = await _read_all([r for r, _ in fds])
    except BaseException:
        with contextlib.suppress(OSError):  # the script and everything it started
            os.killpg(launched.pid, signal.SIGKILL)
        raise
    finally:
        os.close(launched.pidfd)
    code = status.decode().strip()
    if code != "0":
        lines = err.decode(errors="replace").strip().splitlines()
        raise SandboxError(f"{name} failed: {lines[-1] if lines else f'exit status {code!r}'}")
    return out.decode(errors="replace")


async def _read_all(fds: list[int]) -> list[bytes]:
    """Everything written to each pipe until all writers closed it (fds are closed)."""
    loop = asyncio.get_running_loop()
    bufs = {fd: bytearray() for fd in fds}
    pending = set(fds)
    done: asyncio.Future[None] = loop.create_future()

    def ready(fd: int) -> None:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            bufs[fd] += chunk
            return
        loop.remove_reader(fd)
        pending.discard(fd)
        if not pending and not done.done():
            done.set_result(None)

    for fd in fds:
        os.set_blocking(fd, False)
        loop.add_reader(fd, ready, fd)
    try:
        await done
    finally:
        for fd in pending:
            loop.remove_reader(fd)
        for fd in fds:
            os.close(fd)
    return [bytes(bufs[fd]) for fd in fds]
