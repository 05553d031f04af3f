"""The private copy of a repo an agent works in, and the diff of what it changed.

The baseline lives in a host-only git dir (shared by the copies of one repo state, see
`sandbox.baselines`, or the workspace's own `base.git`; never mounted into a sandbox), so
nothing the agent writes - hooks, `.git/config` filters, fsmonitor, diff drivers - is ever
read by the git the host runs. A workspace nothing touched has an empty diff without git.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral.domain import SandboxError
from corral.sandbox import mounts
from corral.sandbox.baselines import Baseline, SourceKey, baselines
from corral.sandbox.hostrun import run_sh
from corral.sandbox.procs import dir_owner, owned_tempdir, owner_alive

log = logging.getLogger(__name__)

_GIT_SAFETY = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.pager=cat",
    "-c", "diff.external=",
    "-c", "core.quotePath=false",
    "-c", "safe.directory=*",
    "-c", "core.autocrlf=false",
    "-c", "core.symlinks=true",
)  # fmt: skip
_OWN_BASELINE = "base"  # the workspace's own snapshot, when its copy has no shared one
# Build and tool caches an agent's commands leave behind; never part of a diff.
_ALWAYS_EXCLUDED = (
    "__pycache__/", "*.py[cod]", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
    ".tox/", ".nox/", ".venv/", "node_modules/", ".coverage", "*.egg-info/",
)  # fmt: skip
_BASELINE = "baseline"  # where a workspace's snapshot is: tree, git dir, index


def git_env(root: Path) -> dict[str, str]:
    """A clean environment for host git: no system/global config, no host variables."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "corral",
        "GIT_AUTHOR_EMAIL": "corral@localhost",
        "GIT_COMMITTER_NAME": "corral",
        "GIT_COMMITTER_EMAIL": "corral@localhost",
    }


async def git_script(
    root: Path, body: str, *, git_dir: Path, index: Path, extra_env: dict[str, str] | None = None
) -> str:
    """Run git commands (`git "$@" ...` in `body`, one per line) with the host-only
    `git_dir` against the workspace, safely, in one host process; their stdout."""
    env = git_env(root)
    env |= {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(root / "ws"),
            "GIT_INDEX_FILE": str(index), "CORRAL_WS": str(root / "ws")}  # fmt: skip
    env |= extra_env or {}
    return await run_sh(f'cd -- "$CORRAL_WS"\n{body}', _GIT_SAFETY, env, name="git")


@dataclass
class Workspace:
    """A temp dir holding `ws/` (the agent's copy) and the host-only baseline.

    As root the whole dir is a size-capped tmpfs (`capped`), so a disk fill stops here.
    """

    root: Path
    owner: tuple[int, int] | None = None
    capped: bool = False
    _baseline: asyncio.Task[Baseline] | None = field(default=None, repr=False)
    _source: str | None = field(default=None, repr=False)  # the copy's `SourceKey`
    _untouched: Tree | None = field(default=None, repr=False)  # the copy, as made
    removed: bool = field(default=False, repr=False)  # set before anything is deleted

    @property
    def path(self) -> Path:
        return self.root / "ws"

    async def load(self, repo: Path) -> None:
        """Copy `repo` into `ws/`, lock its git hooks/config, start the baseline snapshot.

        The snapshot runs in the background; callers must `await ws.baseline()` before the
        agent can change anything (the sandboxes do so before their first command).
        """
        src = _check_repo(repo)
        try:
            await asyncio.to_thread(self._fill, src)
        except (OSError, shutil.Error) as exc:
            raise SandboxError(f"cannot copy repository {src}: {_one_line(exc)}") from None
        self._baseline = asyncio.ensure_future(_take_baseline(self, self._source))

    def _fill(self, src: Path) -> None:
        self._source = _copy_tree(src, self.path, self.owner)
        self.lock_git()
        try:
            self._untouched = _tree(self.path)
        except OSError:  # a part we cannot read (not root): every diff asks git
            self._untouched = None

    def lock_git(self) -> None:
        """Make `.git/hooks` and `.git/config` read-only, in the sandbox too.

        Defence in depth: the host never runs them (it uses the host-only baseline), but a
        git the agent runs inside should not run planted hooks either.
        """
        git_dir = self.path / ".git"
        if not self.capped or git_dir.is_symlink() or not git_dir.is_dir():
            return
        hooks = git_dir / "hooks"
        if not hooks.exists():
            hooks.mkdir()
        for target in (hooks, git_dir / "config"):
            if target.is_symlink() or not target.exists():
                continue
            try:
                mounts.ro_bind_self(target)
            except OSError as exc:
                log.warning("cannot make %s read-only: %s", target, exc)

    async def baseline(self) -> str:
        """The tree id of the workspace as it was before the agent touched it."""
        return (await self._taken()).tree

    async def _taken(self) -> Baseline:
        if self._baseline is None:
            self._baseline = asyncio.ensure_future(_take_baseline(self, None))
        return await self._baseline

    async def diff(self) -> str:
        base = await self._taken()
        was = self._untouched
        if was is None:
            return await _diff(self.root, base)
        try:
            # A small copy is walked here (cheaper than a thread hop) unless the agent
            # made it large; a large one in a thread, off the event loop.
            now = _tree(self.path, limit=512) if len(was) < 256 else None
            if now is None:
                now = await asyncio.to_thread(_tree, self.path)
        except OSError as exc:  # unreadable to us (not root): git reads what it can
            log.debug("cannot walk %s: %s", self.path, exc)
            return await _diff(self.root, base)
        assert now is not None
        if now == was:
            return ""
        changed = [p for p, seen in now.items() if len(seen) > 1 and was.get(p) != seen]
        return await _diff(self.root, base, changed)

    def remove(self) -> None:
        """Delete the workspace (callable from any thread: sandboxes close it in one)."""
        self.removed = True
        task, self._baseline = self._baseline, None
        if task is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing to drop
                task.get_loop().call_soon_threadsafe(_drop, task)
        remove_root(self.root, capped=self.capped)


def _drop(task: asyncio.Task[Baseline]) -> None:
    """Closed: nobody will want the snapshot, and a shared one is no longer in use here."""
    if task.done():
        if not task.cancelled() and task.exception() is None:
            baselines.release(task.result())
        return
    task.cancel()
    task.add_done_callback(_drop)


def create(*, owner: tuple[int, int] | None = None, size_mb: int = 2048) -> Workspace:
    """An empty workspace dir (`ws/`, `ctl/`, `state/`, `home/`) ready for a sandbox."""
    root = owned_tempdir("corral-")
    workspace = Workspace(root=root, owner=owner)
    try:
        os.chmod(root, 0o711)
        if mounts.can_mount():
            try:
                mounts.mount_tmpfs(root, size_mb=size_mb, inodes=max(size_mb * 256, 4096))
                workspace.capped = True
            except OSError as exc:
                log.debug("no size-capped workspace: %s", exc)
        for name in ("ws", "ctl", "state", "home"):
            (root / name).mkdir(mode=0o755)
            if owner is not None and name != "ctl":
                os.chown(root / name, *owner)
        return workspace
    except OSError as exc:
        remove_root(root, capped=workspace.capped)
        raise SandboxError(f"cannot create a workspace: {_one_line(exc)}") from None


async def prepare(
    repo: Path, *, owner: tuple[int, int] | None = None, size_mb: int = 2048
) -> Workspace:
    """A fresh workspace holding a copy of `repo` (with its .git); baseline under way."""
    _check_repo(repo)
    workspace = await asyncio.to_thread(create, owner=owner, size_mb=size_mb)
    try:
        await workspace.load(repo)
    except BaseException:
        workspace.remove()
        raise
    return workspace


def reap_orphans(base: Path | None = None) -> list[Path]:
    """Remove workspaces (and unmount their tmpfs) whose owning process is gone.

    Why: a process killed with -9 leaves its workspaces mounted, and every mount on the
    host makes each later bwrap start slower (bwrap reads the mount table per bind).
    Only dirs we own are touched: a dir another user planted is never reaped as root.
    """
    base = Path(base or tempfile.gettempdir())
    mounted = set(mounts.mounted_under(base))
    gone = []
    with os.scandir(base) as entries:
        for entry in entries:
            if not entry.name.startswith("corral-"):
                continue
            root = Path(entry.path)
            try:
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    continue
                token = dir_owner(root)
            except OSError:
                continue  # not a workspace
            if token is None or owner_alive(token):  # None: still being created
                continue
            try:
                remove_root(root, capped=root in mounted)
            except OSError as exc:
                log.debug("cannot reap workspace %s: %s", root, exc)
                continue
            gone.append(root)
    return gone


def remove_root(root: Path, *, capped: bool) -> None:
    """Unmount (if it is a tmpfs of ours) and delete a workspace root."""
    if capped or root in mounts.mounted_under(root.parent):
        try:
            mounts.unmount(root)
        except OSError as exc:
            log.warning("cannot unmount workspace %s: %s", root, exc)
    _rmtree(root)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _copy_tree(src: Path, dst: Path, owner: tuple[int, int] | None) -> str | None:
    """Copy files, dirs and symlinks (as links); skip FIFOs, sockets and devices. The
    source's `SourceKey` as copied (None: it changed meanwhile, or had just changed)."""
    key = SourceKey(src)

    def copy_dir(s: str, d: str, rel: str) -> None:
        os.makedirs(d, exist_ok=True)
        with os.scandir(s) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        for entry in listed:
            name = f"{rel}/{entry.name}" if rel else entry.name
            to = os.path.join(d, entry.name)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                key.add(name, st)
                copy_dir(entry.path, to, name)
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(entry.path)
                key.add(name, st, link)
                os.symlink(link, to)
            elif stat.S_ISREG(st.st_mode):
                key.add(name, st)
                shutil.copy2(entry.path, to, follow_symlinks=False)
                if _changed(st, os.lstat(entry.path)):
                    key.changed()
            else:
                continue
            if owner is not None:
                os.lchown(to, *owner)
        shutil.copystat(s, d)

    copy_dir(str(src), str(dst), "")
    if owner is not None:
        os.lchown(dst, *owner)
    return key.value()


def _changed(before: os.stat_result, after: os.stat_result) -> bool:
    def seen(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    return seen(before) != seen(after)


# Every entry of a workspace: path -> (mode, inode, size, mtime, ctime) (dirs: mode only).
Tree = dict[str, tuple[int, ...]]


def _tree(top: Path, limit: int | None = None) -> Tree | None:
    """What a workspace holds, by lstat: equal twice means nothing was written, created,
    removed or renamed between (any write moves ctime, which nothing can set back).
    None past `limit` entries. Iterative: an agent may nest directories very deep."""
    found: Tree = {}
    todo = [(str(top), "")]
    while todo:
        path, rel = todo.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    found[name] = (st.st_mode,)
                    todo.append((entry.path, name))
                else:
                    found[name] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns,
                                   st.st_ctime_ns)  # fmt: skip
        if limit is not None and len(found) > limit:
            return None
    return found


def _check_repo(repo: Path) -> Path:
    src = Path(repo).expanduser()
    if not src.is_dir():
        raise SandboxError(f"repository not found or not a directory: {src}")
    if not os.access(src, os.R_OK | os.X_OK):
        raise SandboxError(f"repository is not readable: {src}")
    return src


async def _take_baseline(ws: Workspace, key: str | None) -> Baseline:
    """The shared snapshot of the copy's source state, or (no key) the workspace's own."""
    root = ws.root

    async def snapshot(at: Path) -> Baseline:
        git_dir = at / "git"
        for sub in ("objects", "refs"):  # a bare repo by hand: one git process fewer
            (git_dir / sub).mkdir(parents=True, exist_ok=True)
        (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
        (git_dir / "info").mkdir(exist_ok=True)
        (git_dir / "info" / "exclude").write_text("\n".join(_ALWAYS_EXCLUDED) + "\n")
        script = 'git "$@" add -A -- .\ngit "$@" write-tree'
        index = at / "index"
        tree = (await git_script(root, script, git_dir=git_dir, index=index)).strip()
        if ws.removed:  # git may have read a half-deleted copy: never share that
            raise SandboxError("the workspace was removed while its baseline was taken")
        return Baseline(git_dir, tree, index)

    taken = await baselines.take(key, snapshot, root / _OWN_BASELINE)
    (root / _BASELINE).write_text(f"{taken.tree}\n{taken.git_dir}\n{taken.index}\n")
    return taken


async def diff(workspace: Path) -> str:
    """Unified diff of every change in a prepared workspace, new untracked files included.

    Files matched by the repo's .gitignore are left out, as git would, and so are build
    and tool caches (`__pycache__`, `.pytest_cache`, ...) that are not already tracked.
    """
    root = Path(workspace).parent
    try:
        tree, git_dir, index = (root / _BASELINE).read_text().splitlines()
    except (OSError, ValueError):
        raise SandboxError(
            f"no baseline for {workspace} (not prepared by corral.sandbox)"
        ) from None
    return await _diff(root, Baseline(Path(git_dir), tree, Path(index)))


async def _diff(root: Path, base: Baseline, changed: Sequence[str] = ()) -> str:
    """`diff` from a known baseline. `changed`: paths known to have been written (by
    their ctime), which git must read again whatever its index says (it compares times
    in whole seconds, so a same-size edit whose mtime was put back, in the second the
    copy was made, would pass for clean)."""
    index = root / f"diff-{os.getpid()}-{id(base)}.index"
    reread = index.with_suffix(".reread")
    (root / "objects").mkdir(exist_ok=True)
    try:
        # copy2 keeps the index's mtime: git trusts a file's cached stat only when the
        # file is older than the index, so a copy stamped "now" made a same-size edit in
        # the baseline's second (a pin bump 3.6 -> 3.7) invisible to the diff.
        shutil.copy2(base.index, index)
        script = (
            'git "$@" add -A -- .\n'
            'git "$@" diff --cached --binary --no-color --no-ext-diff --no-textconv "$TREE"'
        )
        if changed:  # out of the index: `add` hashes them again, from what they hold now
            reread.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in changed))
            script = f'git "$@" update-index -z --force-remove --stdin <"$REREAD"\n{script}'
        # New objects go to the workspace; the baseline's git dir may be shared.
        env = {"TREE": base.tree, "GIT_OBJECT_DIRECTORY": str(root / "objects"),
               "GIT_ALTERNATE_OBJECT_DIRECTORIES": f"{base.git_dir}/objects",
               "REREAD": str(reread)}  # fmt: skip
        return await git_script(root, script, git_dir=base.git_dir, index=index, extra_env=env)
    finally:
        index.unlink(missing_ok=True)
        reread.unlink(missing_ok=True)


def _rmtree(root: Path) -> None:
    """Remove a workspace even if the agent chmod-ed parts of it unreadable."""

    top = os.path.abspath(root)

    def fix(_func: object, path: str, _exc: object) -> None:
        parent = os.path.dirname(os.path.abspath(path))
        if not (parent == top or parent.startswith(top + os.sep)):
            return  # never touch what is outside the workspace (its parent is /tmp)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass

    shutil.rmtree(root, onerror=fix)
