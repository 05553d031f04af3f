"""Starts sandbox processes from a small helper, so this (big) process never forks.

Why: `subprocess` cannot use vfork once it has to switch users, and a plain fork copies
the parent's page tables while blocking its event loop - here ~3 ms for a 10 MB process,
~40 ms at 300 MB and ~90 ms at 1 GB, per sandbox. The helper is a tiny `python -I -S`
started once, already as the unprivileged sandbox uid; it starts each program with
posix_spawn (vfork, so cheap) and answers with a pidfd. We talk to it over a
SOCK_SEQPACKET socket: a request carries argv, env and the file descriptors the child
gets (as SCM_RIGHTS), plus a socket of its own for the answer, so callers on any thread
or event loop never read each other's replies.

The helper exits as soon as we do (its socket closes, and it has a parent-death
signal), and the programs it starts are expected to die with it (bwrap
`--die-with-parent`). It reaps its children itself; we learn that a child ended from
the pidfd, not from an exit status.
"""

from __future__ import annotations

import array
import asyncio
import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from corral.sandbox import spawnroom

_MAX_FDS = 16
# The helper itself: stdlib only, no site packages, nothing of ours imported.
_HELPER = r"""
import array, ctypes, fcntl, json, os, signal, socket, sys
parent, libc = os.getppid(), ctypes.CDLL(None)
libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
libc.prctl(4, 0)  # PR_SET_DUMPABLE: other processes of this uid may not ptrace us
if os.getppid() != parent:
    sys.exit(0)
def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
# Every signal at its default in the child: ours are handled or ignored (SIGCHLD, and
# SIGPIPE/SIGXFSZ by Python; SIGHUP under nohup), and that must not be inherited.
defaults = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
sock = socket.socket(fileno=int(sys.argv[1]))
sock.set_inheritable(False)  # passed to us inheritable: must not reach what we start
space = socket.CMSG_SPACE(int(sys.argv[2]) * 4)
while True:
    try:
        msg, anc, flags, _ = sock.recvmsg(1 << 20, space, socket.MSG_CMSG_CLOEXEC)
    except InterruptedError:
        continue
    if not msg and not anc:
        break
    fds = array.array("i")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not fds:
        continue
    reply, given = fds[0], list(fds[1:])
    answer, sent = {}, []
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ValueError("request truncated")
        req = json.loads(msg)
        # Above every target number, so no dup2 below overwrites a later source.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in given]
        given += high
        acts = [(os.POSIX_SPAWN_DUP2, s, t) for s, t in zip(high, req["targets"])]
        # Not reaped before its pidfd exists; Python ignores SIGPIPE and SIGXFSZ, and
        # the child must not inherit that (nor the mask).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.posix_spawn(
                req["argv"][0], req["argv"], req["env"], file_actions=acts, setsigmask=(),
                setsigdef=defaults,
                setsid=bool(req.get("setsid")))
            sent = [os.pidfd_open(pid)]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        answer = {"pid": pid}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    out = socket.socket(fileno=reply)
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", sent))] if sent else []
    try:
        out.sendmsg([json.dumps(answer).encode()], rights)
    except OSError:
        pass
    out.close()
    for fd in sent + given:
        try:
            os.close(fd)
        except OSError:
            pass
"""


class LaunchError(OSError):
    """The helper could not start the program (or is gone)."""


@dataclass
class Launched:
    pid: int
    pidfd: int  # ours to close


class Launcher:
    """One helper process running as `owner` (None: as we are)."""

    def __init__(self, owner: tuple[int, int] | None, room: Path | None = None) -> None:
        """`room`: start in a mount namespace of its own, reached only through `room`
        (see `sandbox.spawnroom`); needs root, and an `owner` to drop to."""
        self.owner = owner
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [_python(owner), "-I", "-S", "-c", _HELPER, str(theirs.fileno()),
                str(_MAX_FDS + 1)]  # fmt: skip
        user = owner
        if room is not None and owner is not None:
            argv[4] = spawnroom.PRELUDE + _HELPER
            argv += [str(room), str(owner[0]), str(owner[1])]
            user = None  # the prelude drops to `owner` itself, after making the namespace
        try:
            self._proc = subprocess.Popen(
                argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", env={},
                start_new_session=True, user=user[0] if user else None,
                group=user[1] if user else None, extra_groups=[] if user else None,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self.pid = os.getpid()  # a forked child of ours must start its own helper

    @property
    def helper_pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self.pid == os.getpid() and self._proc.poll() is None

    async def spawn(
        self, argv: list[str], env: dict[str, str], fds: dict[int, int], *, setsid: bool = False
    ) -> Launched:
        """Start `argv` with `fds` (child fd number -> our fd); the pid and a pidfd back.
        `setsid`: in a session (and process group) of its own, so it can be killed whole."""
        if len(fds) > _MAX_FDS:
            raise LaunchError(f"too many file descriptors for one launch ({len(fds)})")
        fields = {"argv": argv, "env": env, "targets": list(fds), "setsid": setsid}
        request = json.dumps(fields).encode()
        mine, reply = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            handed = array.array("i", [reply.fileno(), *fds.values()])
            try:
                self._sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, handed)])
            except OSError as exc:
                raise LaunchError(f"sandbox launcher is gone: {exc}") from None
            reply.close()
            msg, received = await _receive(mine)
        finally:
            mine.close()
            reply.close()
        try:
            answer = json.loads(msg) if msg else {"error": "sandbox launcher exited"}
            if "error" in answer or not received:
                raise LaunchError(str(answer.get("error", "no pidfd in the answer")))
            return Launched(int(answer["pid"]), received.pop(0))
        finally:
            for fd in received:
                os.close(fd)

    def close(self) -> None:
        self._sock.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def _python(owner: tuple[int, int] | None) -> str:
    """A Python the helper's user can run: ours may live under a private home (a venv)."""
    if owner is None:
        return sys.executable
    for path in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(path):
            return path
    return sys.executable


async def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message and its fds, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(sock.fileno(), _wake, ready)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
    fds = array.array("i")
    msg, anc, _flags, _ = sock.recvmsg(
        65536, socket.CMSG_SPACE(4 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


_LOCK = threading.Lock()
_LAUNCHERS: dict[tuple[int, int] | None, Launcher] = {}


@atexit.register
def _close_all() -> None:
    """At exit, stop our helpers (they would follow us anyway: their socket closes)."""
    with _LOCK:
        for helper in _LAUNCHERS.values():
            if helper.pid == os.getpid():
                with contextlib.suppress(OSError):
                    helper.close()
        _LAUNCHERS.clear()


def launcher(owner: tuple[int, int] | None) -> Launcher:
    """The helper for `owner`, started on first use (again if it died)."""
    with _LOCK:
        current = _LAUNCHERS.get(owner)
        if current is None or not current.alive:
            if current is not None and current.pid == os.getpid():
                with contextlib.suppress(OSError):
                    current.close()
            room = spawnroom.room() if owner is not None else None
            current = _LAUNCHERS[owner] = Launcher(owner, room)
        return current
