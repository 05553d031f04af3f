"""One baseline snapshot per repo state, shared by every workspace copied from it.

Why: a fleet runs many attempts on the same repository, and each took its own baseline
(`git add -A` and `write-tree` over its whole copy: hashing and storing every file, two
git processes and a shell) although every copy held the same files. Now the first
workspace copied from a given state of the repo takes the snapshot into a host-only git
dir of this process, and later copies of that same state reuse its tree and objects.

"The same state" is decided from what the copy saw of the source (`SourceKey`): every
entry's path, type, mode, size, device, inode, mtime and ctime. A file changed in any way
gets a new ctime, which no one can set by hand; a file whose ctime is so recent that a
second write could share its clock tick makes the copy's key None (its own snapshot).
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import itertools
import os
import shutil
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corral.sandbox.procs import owned_tempdir

__all__ = ["Baseline", "Baselines", "SourceKey", "baselines"]

# A source file changed more recently than this may change again within the same clock
# tick (ctime is stamped from a coarse clock): no shared snapshot for such a copy.
_SETTLED_NS = 100_000_000


@dataclass(frozen=True)
class Baseline:
    """A snapshot: `tree` in the bare git dir `git_dir`, and the index that made it."""

    git_dir: Path
    tree: str
    index: Path
    key: str | None = None  # shared under this key (None: the workspace's own)


class SourceKey:
    """Digest of a source tree as a copy read it; `value()` is None if it was unsettled."""

    def __init__(self, src: Path) -> None:
        self._hash = hashlib.sha256(os.fsencode(os.path.realpath(src)))
        self._now = time.time_ns()
        self.settled = True

    def add(self, rel: str, st: os.stat_result, link: str = "") -> None:
        fields = (rel, st.st_mode, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns,
                  st.st_ctime_ns, link)  # fmt: skip
        self._hash.update(repr(fields).encode(errors="surrogateescape") + b"\0")
        if not stat.S_ISDIR(st.st_mode) and self._now - st.st_ctime_ns < _SETTLED_NS:
            self.settled = False

    def changed(self) -> None:
        """A file changed while it was copied."""
        self.settled = False

    def value(self) -> str | None:
        return self._hash.hexdigest() if self.settled else None


@dataclass
class _Entry:
    baseline: Baseline | None = None
    pending: asyncio.Future[None] | None = None  # being made; done when it is
    refs: int = 0


@dataclass
class Baselines:
    """The process's shared snapshots, the least recently used unreferenced ones dropped
    past `limit` (a long-running worker sees many repos)."""

    limit: int = 32
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _dir: Path | None = None
    _tries: Iterator[int] = field(default_factory=itertools.count)

    async def take(
        self, key: str | None, make: Callable[[Path], Awaitable[Baseline]], own: Path
    ) -> Baseline:
        """The snapshot for `key`, made by `make(dir)` once (the others wait for it); with
        no key, made in `own`. Pair each take of a shared one with a `release`."""
        if key is None:
            return await make(own)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                entry = self._entries.setdefault(key, _Entry())
                self._entries.move_to_end(key)
                if entry.baseline is not None:
                    entry.refs += 1
                    return entry.baseline
                pending = entry.pending
                if pending is None or pending.done() or pending.get_loop() is not loop:
                    pending = entry.pending = loop.create_future()
                    break
            await asyncio.wait([pending])  # being made: take it, or (its maker failed) try
        # A dir of its own for each try: a try cut short (its sandbox closed, git killed)
        # leaves an index.lock that must never meet the next one.
        at = self._root() / f"{key[:24]}-{next(self._tries)}"
        try:
            made = await make(at)
        except BaseException:
            shutil.rmtree(at, ignore_errors=True)
            with self._lock:
                entry.pending = None
                if entry.baseline is None and self._entries.get(key) is entry:
                    del self._entries[key]
            pending.cancel()
            raise
        made = dataclasses.replace(made, key=key)
        with self._lock:
            entry.baseline, entry.pending = made, None
            entry.refs += 1
        pending.set_result(None)
        self._evict()
        return made

    def release(self, baseline: Baseline) -> None:
        """A workspace is done with `baseline` (callable from any thread)."""
        if baseline.key is None:
            return
        with self._lock:
            entry = self._entries.get(baseline.key)
            if entry is not None and entry.baseline is baseline:
                entry.refs -= 1
        self._evict()

    def _evict(self) -> None:
        drop = []
        with self._lock:
            spare = len(self._entries) - self.limit
            for key, entry in list(self._entries.items()):
                if spare <= 0:
                    break
                if entry.refs <= 0 and entry.baseline is not None:
                    del self._entries[key]
                    drop.append(entry.baseline.git_dir.parent)
                    spare -= 1
        for path in drop:
            shutil.rmtree(path, ignore_errors=True)

    def _root(self) -> Path:
        """This process's dir of snapshots, named for its owner so that one a killed
        worker left is reaped like its workspaces (`workspace.reap_orphans`)."""
        with self._lock:
            if self._dir is None or not self._dir.is_dir():
                root = owned_tempdir("corral-baselines-")
                atexit.register(shutil.rmtree, root, ignore_errors=True)
                self._dir = root
            return self._dir

    def clear(self) -> None:
        """Drop every snapshot (tests)."""
        with self._lock:
            self._entries.clear()
            root, self._dir = self._dir, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


baselines = Baselines()
