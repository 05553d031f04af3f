"""Finding a sandbox's processes from the host, by /proc and cgroups (no tools needed)."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import signal
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_CGROOT = Path("/sys/fs/cgroup")


def _pids(source: Path | None) -> list[int]:
    if source is not None:
        with contextlib.suppress(OSError):
            return [int(x) for x in source.read_text().split()]
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


@dataclass
class NamespaceScope:
    """Processes in one pid namespace; the inside pid is the last NSpid entry."""

    ns: str  # readlink of /proc/<pid>/ns/pid, e.g. "pid:[4026532181]"
    procs_file: Path | None = None  # cgroup.procs narrows the scan when we have one

    def members(self) -> list[tuple[int, int]]:
        found = []
        for pid in _pids(self.procs_file):
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != self.ns:
                    continue
            except OSError:
                continue
            status = _status(pid)
            if status.get("State", "Z").startswith(("Z", "X")) or not status.get("NSpid"):
                continue
            found.append((pid, int(status["NSpid"].split()[-1])))
        return found


@dataclass
class SessionScope:
    """Processes in a session or descended from its leader (for the local backend)."""

    leader: int

    def members(self) -> list[tuple[int, int]]:
        table: dict[int, tuple[int, int]] = {}
        for pid in _pids(None):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] in ("Z", "X"):
                continue
            table[pid] = (int(fields[1]), int(fields[3]))  # ppid, session
        found = []
        for pid, (_ppid, sid) in table.items():
            node, hops = pid, 0
            inside = sid == self.leader or pid == self.leader
            while not inside and node in table and hops < 64:
                node, hops = table[node][0], hops + 1
                inside = node == self.leader
            if inside:
                found.append((pid, pid))
        return found


def descendants(pid: int) -> list[int] | None:
    """`pid` and every live process below it; None if /proc lacks `task/*/children`."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            try:
                todo += [
                    int(x) for x in Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
                ]
            except FileNotFoundError:
                if not Path(f"/proc/{parent}/task/{tid}").exists():
                    continue
                return None
            except OSError:
                continue
    return found


def own_cgroup(controller: str) -> str | None:
    """Our cgroup path for a v1 controller ('' key for v2), from /proc/self/cgroup."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return path
    return None


@dataclass
class Cgroups:
    """A per-sandbox cgroup (v2 if it has memory+pids, else v1 memory and pids)."""

    dirs: list[Path] = field(default_factory=list)
    procs_file: Path | None = None
    pids_events: Path | None = None
    oom_file: Path | None = None
    version: int = 0
    # Counter files stay open: they are read after every command, and an open() on
    # cgroupfs costs more than the read. _plain: files pread cannot re-read.
    _fds: dict[Path, int] = field(default_factory=dict, init=False, repr=False)
    _plain: set[Path] = field(default_factory=set, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    @classmethod
    def create(cls, memory_mb: int, pids: int) -> Cgroups | None:
        # The name carries its maker (pid and start time), so `reap_orphan_cgroups` can
        # tell a dead worker's leftovers from a live worker's fresh, still empty, group.
        pid, _, started = owner_token().partition(":")
        name = f"corral-{pid}-{started}-{uuid.uuid4().hex[:8]}"
        for make in (cls._v2, cls._v1):
            try:
                made = make(name, memory_mb, pids)
            except OSError as exc:
                log.debug("cgroup setup failed: %s", exc)
                continue
            if made is not None:
                return made
        return None

    @classmethod
    def _v2(cls, name: str, memory_mb: int, pids: int) -> Cgroups | None:
        if not (_CGROOT / "cgroup.controllers").is_file():
            return None
        parent = _CGROOT / (own_cgroup("") or "/").lstrip("/")
        if not {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text().split()):
            return None
        group = cls(version=2)
        path = parent / name
        path.mkdir()
        group.dirs.append(path)
        try:
            (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(pids))
        except OSError:
            group.remove()
            raise
        group.procs_file = path / "cgroup.procs"
        group.pids_events = path / "pids.events"
        group.oom_file = path / "memory.events"
        return group

    @classmethod
    def _v1(cls, name: str, memory_mb: int, pids: int) -> Cgroups | None:
        mem_parent, pid_parent = own_cgroup("memory"), own_cgroup("pids")
        if mem_parent is None or pid_parent is None:
            return None
        group = cls(version=1)
        try:
            mem = _CGROOT / "memory" / mem_parent.lstrip("/") / name
            mem.mkdir()
            group.dirs.append(mem)
            limit = str(memory_mb * 1024 * 1024)
            (mem / "memory.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):
                (mem / "memory.memsw.limit_in_bytes").write_text(limit)
            pid = _CGROOT / "pids" / pid_parent.lstrip("/") / name
            pid.mkdir()
            group.dirs.append(pid)
            (pid / "pids.max").write_text(str(pids))
        except OSError:
            group.remove()
            raise
        group.procs_file = mem / "cgroup.procs"
        group.pids_events = pid / "pids.events"
        group.oom_file = mem / "memory.oom_control"
        return group

    def add(self, pid: int) -> None:
        """Move a process (before it forks anything) into every controller."""
        for path in self.dirs:
            (path / "cgroup.procs").write_text(str(pid))

    def warm_up(self, pid: int) -> bool:
        """Re-add `pid`, a process of ours still in our own cgroups, to them (a no-op move).

        Why: the first move into a cgroup after a quiet spell waits for an RCU grace
        period (10-15 ms here: the kernel's cgroup_threadgroup_rwsem); moves during the
        next grace period or so do not. Started before a sandbox's process exists, the
        wait overlaps its start instead of following it. False if a move failed.
        """
        ok = True
        for path in self.dirs:
            try:
                (path.parent / "cgroup.procs").write_text(str(pid))
            except OSError:
                ok = False
        return ok

    def counter(self, path: Path | None, key: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            for line in self._read(path).splitlines() if path else []:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        return 0

    def _read(self, path: Path) -> str:
        """The file's current text, through an fd kept open (kernfs regenerates a file
        on a read at offset 0); a plain open/read where that cannot work."""
        if self._closed or path in self._plain:
            return path.read_text()
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, 4096, 0).decode()
        except OSError as exc:
            if exc.errno not in (errno.ESPIPE, errno.EINVAL):
                raise
            self._plain.add(path)  # not seekable: read it the plain way from now on
            os.close(self._fds.pop(path))
            return path.read_text()

    def close(self) -> None:
        """Close the counter files (idempotent); later reads open the files each time."""
        self._closed = True
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def pids_hits(self) -> int:
        return self.counter(self.pids_events, "max")

    def oom_kills(self) -> int:
        return self.counter(self.oom_file, "oom_kill")

    def remove(self) -> bool:
        """Remove the cgroups; False while some are still busy (processes exiting)."""
        self.close()
        left = []
        for path in self.dirs:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(path)
        self.dirs = left
        return not left

    @classmethod
    def of_pid(cls, pid: int) -> Cgroups | None:
        """A read-only view of the cgroups an existing process is in (e.g. a container)."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        paths = {}
        for line in lines:
            _, names, path = line.split(":", 2)
            for name in names.split(",") if names else [""]:
                paths[name] = path.lstrip("/")
        if set(paths) == {""}:
            v2 = _CGROOT / paths[""]
            return cls(procs_file=v2 / "cgroup.procs", pids_events=v2 / "pids.events",
                       oom_file=v2 / "memory.events", version=2)  # fmt: skip
        if "memory" not in paths or "pids" not in paths:
            return None
        mem, pid_dir = _CGROOT / "memory" / paths["memory"], _CGROOT / "pids" / paths["pids"]
        return cls(procs_file=mem / "cgroup.procs", pids_events=pid_dir / "pids.events",
                   oom_file=mem / "memory.oom_control", version=1)  # fmt: skip


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot): tells reused pids apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def _cgroup_parents() -> list[Path]:
    """Where this process makes its sandboxes' cgroups (v2, or v1 memory and pids)."""
    found = []
    own = own_cgroup("")
    if own is not None and (_CGROOT / "cgroup.controllers").is_file():
        found.append(_CGROOT / own.lstrip("/"))
    for controller in ("memory", "pids"):
        path = own_cgroup(controller)
        if path is not None:
            found.append(_CGROOT / controller / path.lstrip("/"))
    return [p for p in found if p.is_dir()]


def reap_orphan_cgroups(parents: list[Path] | None = None) -> list[Path]:
    """Remove the empty cgroups of sandboxes whose worker is gone (killed with -9: its
    sandboxes died with it, their cgroups stayed). A live worker's groups are kept."""
    gone = []
    for parent in _cgroup_parents() if parents is None else parents:
        for group in parent.glob("corral-*-*-*"):
            pid, started = group.name.split("-")[1:3]
            if not pid.isdigit() or owner_alive(f"{pid}:{started}"):
                continue
            try:
                if (group / "cgroup.procs").read_text().strip():
                    continue  # something still runs in it: not ours to judge
                group.rmdir()
            except OSError:
                continue
            gone.append(group)
    return gone


def reap_orphan_sandboxes(uid: int, base: Path) -> list[int]:
    """Kill the bwrap processes of our sandboxes that nobody owns any more.

    Why: after a worker is killed with -9, a sandbox's init (bwrap's pid 1, running as
    the sandbox uid) was sometimes left reparented to the host's init, waiting forever.
    Ours: run as `uid` (a uid only sandboxes use), named bwrap, binding a workspace of
    ours (under `base`/corral-). Orphaned: their parent is pid 1; a live sandbox's
    bwrap always has its launcher or its outer bwrap as parent.
    """
    mark = f"{str(base).rstrip('/')}/corral-".encode()
    killed = []
    for pid in _pids(None):
        status = _status(pid)
        uids = status.get("Uid", "").split()
        if status.get("Name") != "bwrap" or status.get("PPid") != "1" or uids[:1] != [str(uid)]:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        binds = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == b"--bind"]
        if not any(b.startswith(mark) for b in binds):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def owner_token(pid: int | None = None) -> str:
    """`pid:start-time` of a process, to label what it owns (containers, workspaces)."""
    if pid is None:
        return _own_token(os.getpid())  # every sandbox start labels two things with it
    return f"{pid}:{start_time(pid) or 0}"


@functools.cache
def _own_token(pid: int) -> str:
    """Ours, read once per process (a forked child has another pid, so its own entry)."""
    return owner_token(pid)


def owned_tempdir(prefix: str) -> Path:
    """A new temp dir whose name carries our owner token (`PREFIX<pid>-<start>-XXXXXXXX`).
    Why: a label written into it afterwards could be cut off by a kill -9 between the
    two steps, leaving a dir (a mounted tmpfs, even) that no reaper could tell was
    orphaned; a name is there from the first instant."""
    pid, _, started = owner_token().partition(":")
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid}-{started}-"))


_OWNED_NAME = re.compile(r"-(\d+)-(\d+)-[^-]+$")


def dir_owner(root: Path) -> str | None:
    """The owner token of a dir `owned_tempdir` made; for one an older corral made, its
    `owner` label (None while nobody can say)."""
    m = _OWNED_NAME.search(root.name)
    return f"{m[1]}:{m[2]}" if m else owner_label(root)


def owner_label(root: Path) -> str | None:
    """The owner token an older corral wrote into `root`, or None while nobody can say
    (no label yet, or a label being written by a live process). A writer killed between
    writing its part and the rename left only the part: its token (or, cut short
    mid-write, its pid in the name) still tells whether that writer is gone."""
    try:
        return (root / "owner").read_text().strip() or None
    except FileNotFoundError:
        pass
    for part in root.glob(".owner.*"):
        try:
            token = part.read_text().strip()
        except OSError:
            continue
        if token:
            return token
        pid = part.name.split(".")[2]
        if pid.isdigit() and start_time(int(pid)) is None:
            return f"{pid}:0"  # died mid-write: no process has that pid now
    return None


def owner_alive(token: str) -> bool:
    """Whether the process that wrote `token` is still running (not a reused pid)."""
    pid, _, started = token.partition(":")
    if not pid.isdigit():
        return False
    return start_time(int(pid)) == started
