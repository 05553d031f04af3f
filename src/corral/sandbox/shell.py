"""One long-lived bash per sandbox, shared by every backend.

Why this shape:
- A command travels over the shell's stdin as `<seq> <length>` and then exactly that
  many bytes (`read -N`), and is run with `eval` by the worker shell itself, so `cd` and
  `export` persist for free and a command costs no process start and no file write. The
  command gets /dev/null as stdin, so it cannot eat the next instruction.
- Completion records go to a separate pipe (fd `M`, closed for the command), so nothing
  a command prints can fake the end of a command.
- One bash process starts (`bash -c SCRIPT`, nothing written to disk): it is the
  supervisor, and forks the worker as a `( )` subshell, which restarts if it dies (a
  builtin `while :; do :; done` after a timeout, OOM, `exit`). The worker saves
  `export -p` and `$PWD` after every command, and a new worker restores them. Inside a
  command `$$` is the supervisor (as in any subshell; `$BASHPID` is the worker), so the
  supervisor shrugs off TERM/INT/HUP: `kill $$` must not end the sandbox.
- Backends that cannot pass pipes to the shell (a container started ahead of time) use
  FIFOs in the control dir instead (`fifo=True`): the same records, the same ordering
  (output and records are written by the same processes, in order, to kernel pipes),
  and no daemon relaying bytes in between.

Records on the marker pipe, one per line:
    R <worker pid> <supervisor pid>   a worker is ready (pids as seen inside)
    D <seq> <exit code>               command <seq> finished
    X <status>                        the worker died; the supervisor starts another
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from corral.domain import ExecResult, SandboxCrashed, SandboxError
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.output import OutputCollector

log = logging.getLogger(__name__)

_EOF_STATUS = 217  # the worker saw EOF on its stdin: the host is done
_READY_TIMEOUT = 10.0
_GRACE = 0.25  # after killing a command's processes, how long the shell gets to report

_SCRIPT = """\
{prelude}
exec {{__corral_err}}>&2 2>/dev/null  # no "Killed" notes about our own worker
trap : TERM INT HUP
while :; do
  (
    [ -r {state}/env.sh ] && . {state}/env.sh >/dev/null 2>&1
    printf 'R %s %s\\n' "$BASHPID" "$$" >&{m}
    while IFS=' ' read -r __corral_seq __corral_len; do
      LC_ALL=C IFS= read -r -N "$__corral_len" __corral_cmd || exit {eof}
      eval "$__corral_cmd" </dev/null {m}>&-
      __corral_rc=$?
      {{ export -p; printf 'builtin cd -- %q\\n' "$PWD"; }} >{state}/env.sh 2>/dev/null
      printf 'D %s %s\\n' "$__corral_seq" "$__corral_rc" >&{m}
    done
    exit {eof}
  ) 2>&$__corral_err
  __corral_rc=$?
  [ "$__corral_rc" = {eof} ] && exit 0
  printf 'X %s\\n' "$__corral_rc" >&{m}
done
"""
_FIFO_MARK_FD = 7  # the marker fd inside, when the pipes are FIFOs
LAUNCH_MARK_FD = 3  # the marker fd inside, for a shell started with `child_fds()`


class ShellProcess(Protocol):
    """What the driver needs of the sandbox's process: an asyncio Process fits."""

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


class _FdWriter:
    """The write end of the shell's stdin (a pipe or a FIFO), with an async drain."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        if self.fd < 0:
            raise BrokenPipeError("closed")
        self._buf += data

    async def drain(self) -> None:
        """Write everything buffered; a full pipe waits (the shell reads it as it runs)."""
        while self._buf:
            if self.fd < 0:
                raise BrokenPipeError("closed")
            try:
                del self._buf[: os.write(self.fd, self._buf)]
            except BlockingIOError:
                await _writable(self.fd)

    def close(self) -> None:
        self._buf.clear()
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ForeignProcess:
    """A process we did not spawn ourselves, watched and killed by pidfd.

    A container's init, or a sandbox started by the launcher. Its exit status is not
    ours to collect: `wait` reports -SIGKILL once it is gone.
    """

    def __init__(self, pid: int, pidfd: int | None = None) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid) if pidfd is None else pidfd
        self._exited: asyncio.Future[None] | None = None

    async def wait(self) -> int:
        if self._exited is None:
            loop = asyncio.get_running_loop()
            self._exited = fut = loop.create_future()

            def gone() -> None:
                loop.remove_reader(self._pidfd)
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(self._pidfd, gone)
        await asyncio.shield(self._exited)
        if self.returncode is None:
            self.returncode = -signal.SIGKILL
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


class ProcessScope(Protocol):
    """Which processes belong to one sandbox, as (host pid, pid seen inside) pairs."""

    def members(self) -> list[tuple[int, int]]: ...


class ShellDriver:
    """Drives the persistent shell of one sandbox: run, time out, kill, recover."""

    def __init__(
        self, *, limits: SandboxLimits, state_inner: str, ctl: Path | None = None,
        ctl_inner: str = "", fifo_owner: tuple[int, int] | None = None, fifo: bool = False,
    ) -> None:  # fmt: skip
        """`state_inner`: a dir the worker may write (its env between restarts); `ctl` (a
        dir the sandbox sees read-only at `ctl_inner`) holds the FIFOs when `fifo`."""
        self.limits = limits
        self._ctl_inner = ctl_inner
        self._state_inner = state_inner
        if fifo:
            assert ctl is not None
            for name in ("in", "out", "mark"):
                os.mkfifo(ctl / name, 0o600)
                if fifo_owner is not None:
                    os.chown(ctl / name, *fifo_owner)
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
            self._out_r, self._out_w = os.open(ctl / "out", flags), -1
            self._mark_r, self._mark_w = os.open(ctl / "mark", flags), -1
            # Read-write, so opening never blocks and the shell sees EOF once we close it.
            self._in_r, in_w = -1, os.open(ctl / "in", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        else:
            self._in_r, in_w = os.pipe()
            self._out_r, self._out_w = os.pipe()
            self._mark_r, self._mark_w = os.pipe()
            for fd in (self._out_r, self._mark_r):
                os.set_blocking(fd, False)
        self._stdin = _FdWriter(in_w)
        self._fifo = fifo
        self._proc: ShellProcess | None = None
        self._scope: ProcessScope | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._collector: OutputCollector | None = None
        self._stray = b""
        self._mark_buf = b""
        self._pending: tuple[int, asyncio.Future[int]] | None = None
        self._ready = asyncio.Event()
        self._worker: int | None = None
        self._supervisor: int | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        self._dead: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.protected_inner: set[int] = set()
        self.after_command: Callable[[], Awaitable[str]] | None = None

    # -- starting ---------------------------------------------------------------------

    def argv(self, prelude: str = "", *, mark_fd: int | None = None) -> list[str]:
        """The command that starts the shell; `mark_fd` is the marker's fd number inside
        (default: ours, as `pass_fds` keeps it)."""
        mark = _FIFO_MARK_FD if self._fifo else (self._mark_w if mark_fd is None else mark_fd)
        if self._fifo:
            c = self._ctl_inner
            prelude = f"exec 0<{c}/in >{c}/out 2>&1 {mark}>{c}/mark\n{prelude}"
        script = _SCRIPT.format(state=self._state_inner, m=mark, eof=_EOF_STATUS, prelude=prelude)
        return ["/bin/bash", "--noprofile", "--norc", "-c", script]

    def spawn_kwargs(self) -> dict[str, Any]:
        """stdio for `asyncio.create_subprocess_exec`: commands in, output and records out."""
        return {"stdin": self._in_r, "stdout": self._out_w,
                "stderr": self._out_w, "pass_fds": (self._mark_w,)}  # fmt: skip

    def child_fds(self) -> dict[int, int]:
        """The same as fd numbers inside -> our fds, for the launcher (`LAUNCH_MARK_FD`)."""
        return {0: self._in_r, 1: self._out_w, 2: self._out_w, LAUNCH_MARK_FD: self._mark_w}

    def close_child_ends(self) -> None:
        """Close our copy of the child's pipe ends (once: fd numbers get reused)."""
        for fd in (self._in_r, self._out_w, self._mark_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._in_r = self._out_w = self._mark_w = -1

    async def attach(self, proc: ShellProcess, scope: ProcessScope) -> None:
        """Take over a spawned sandbox process and wait for its shell to be ready."""
        self.close_child_ends()
        self._proc, self._scope = proc, scope
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._out_r, self._on_out)
        self._loop.add_reader(self._mark_r, self._on_mark)
        self._watcher = asyncio.ensure_future(self._watch(proc))
        await self._wait_ready("sandbox shell did not start")

    async def _wait_ready(self, what: str) -> None:
        try:
            async with asyncio.timeout(_READY_TIMEOUT):
                await self._ready.wait()
        except TimeoutError:
            raise SandboxCrashed(f"{what} within {_READY_TIMEOUT:g} s{self.stray_note()}") from None
        if self._dead:
            raise SandboxCrashed(f"{what}: {self._dead}{self.stray_note()}")

    def stray_note(self) -> str:
        """Output nobody asked for (e.g. a startup error), for error messages."""
        with contextlib.suppress(OSError):
            while self._out_r >= 0 and (data := os.read(self._out_r, 4096)):
                self._stray = (self._stray + data)[-4096:]
        text = self._stray.decode(errors="replace").strip().replace("\n", " | ")
        return f" ({text[-300:]})" if text else ""

    async def _watch(self, proc: ShellProcess) -> None:
        status = await proc.wait()
        self._drain_out()
        self._dead = f"sandbox shell exited (status {status})"
        if self._pending and not self._pending[1].done():
            self._pending[1].set_exception(SandboxCrashed(self._dead))
        self._ready.set()

    # -- pipes --------------------------------------------------------------------------

    def _read(self, fd: int, size: int) -> bytes:
        """What the pipe has now; at its end, stop watching it. Empty means nothing to do."""
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data and self._loop is not None:
            self._loop.remove_reader(fd)
        return data

    def _on_out(self) -> None:
        data = self._read(self._out_r, 65536)
        if not data:
            return
        if self._collector is not None:
            self._collector.feed(data)
        else:
            self._stray = (self._stray + data)[-4096:]

    def _drain_out(self) -> None:
        """Take what is already in the output pipe: it was written before the record."""
        while True:
            try:
                data = os.read(self._out_r, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            if self._collector is not None:
                self._collector.feed(data)

    def _on_mark(self) -> None:
        data = self._read(self._mark_r, 4096)
        if not data:
            return
        self._mark_buf += data
        while b"\n" in self._mark_buf:
            line, self._mark_buf = self._mark_buf.split(b"\n", 1)
            self._record(line.decode(errors="replace").split())

    def _record(self, fields: list[str]) -> None:
        try:
            if fields[0] == "R":
                self._worker, self._supervisor = int(fields[1]), int(fields[2])
                self._ready.set()
            elif fields[0] == "D":
                if self._pending and self._pending[0] == int(fields[1]):
                    if not self._pending[1].done():
                        self._pending[1].set_result(int(fields[2]))
            elif fields[0] == "X":
                self._ready.clear()
                self._worker = None
                if self._pending and not self._pending[1].done():
                    self._pending[1].set_result(int(fields[1]))
        except (IndexError, ValueError):
            log.debug("ignoring malformed shell record %r", fields)

    # -- running --------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._dead is None

    async def exec(self, command: str, timeout: float | None) -> ExecResult:
        limit = self.limits.clamp_timeout(timeout)
        async with self._lock:
            if self._proc is None:
                raise SandboxError("sandbox is not started")
            if self._dead:
                raise SandboxCrashed(self._dead)
            began = time.monotonic()
            if not self._ready.is_set():
                await self._wait_ready("sandbox shell did not come back")
            self._seq += 1
            # bash variables cannot hold NUL bytes (and `read -N` would not count them).
            text = command.encode("utf-8", "surrogateescape").replace(b"\0", b"") + b"\n"
            collector = OutputCollector(self.limits.output_bytes)
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._collector, self._pending = collector, (self._seq, fut)
            try:
                self._stdin.write(b"%d %d\n%b" % (self._seq, len(text), text))
                await self._stdin.drain()
                async with asyncio.timeout(limit):
                    code: int | None = await asyncio.shield(fut)
                timed_out = False
            except TimeoutError:
                code, timed_out = None, True
                await self._interrupt(fut)
            except (BrokenPipeError, ConnectionResetError):
                raise SandboxCrashed(self._dead or "sandbox shell is gone") from None
            except asyncio.CancelledError:
                self._kill_worker_now()
                raise
            finally:
                self._drain_out()
                self._collector, self._pending = None, None
            output = collector.render()
            if timed_out:
                output += f"\n[command timed out after {limit:g} s; its processes were killed]"
            if self.after_command is not None:
                output += await self.after_command()
            return ExecResult(
                output=output, exit_code=code, timed_out=timed_out,
                truncated=collector.truncated, duration_s=time.monotonic() - began,
            )  # fmt: skip

    async def _interrupt(self, fut: asyncio.Future[int]) -> None:
        """Kill what the command started; if the shell itself is stuck, replace it."""
        await self.sweep()
        with contextlib.suppress(TimeoutError, SandboxError):
            async with asyncio.timeout(_GRACE):
                await asyncio.shield(fut)
            return
        if self._dead:
            raise SandboxCrashed(self._dead)
        self._kill_worker_now()
        await self._wait_ready("sandbox shell did not recover after a timeout")
        await self.sweep()

    def _kill_worker_now(self) -> None:
        """SIGKILL the worker shell (the supervisor starts a fresh one)."""
        worker, self._worker = self._worker, None
        self._ready.clear()
        if worker is None or self._scope is None:
            return
        for host, inner in self._scope.members():
            if inner == worker:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host, signal.SIGKILL)

    async def sweep(self, *, everything: bool = False) -> int:
        """SIGKILL every process of the sandbox but the shell, until none is left.

        Repeats because a fork bomb makes new processes while we kill the old ones.
        """
        if self._scope is None:
            return 0
        killed = 0
        for _ in range(400):
            keep: set[int] = set()
            if not everything:
                keep = {p for p in (self._worker, self._supervisor) if p is not None}
                keep |= self.protected_inner
            victims = [host for host, inner in self._scope.members() if inner not in keep]
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            killed += len(victims)
            await asyncio.sleep(0.002)
        return killed

    async def shutdown(self) -> None:
        """Stop reading and release the pipes; the backend has killed the processes."""
        if self._loop is not None and self._out_r >= 0:
            for fd in (self._out_r, self._mark_r):
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(fd)
        self.close_child_ends()
        self._stdin.close()
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for fd in (self._out_r, self._mark_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._out_r = self._mark_r = -1
        self._dead = self._dead or "sandbox is closed"
