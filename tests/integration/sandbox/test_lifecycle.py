"""Start/close: nothing outlives a sandbox; bad input gets a one-line error."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox import BaseSandbox, BwrapSandbox, mounts, open_sandbox
from corral.sandbox import bwrap as bwrap_module
from corral.sandbox.bwrap import MISSING_BWRAP
from corral.sandbox.procs import NamespaceScope, dir_owner, owner_token
from corral.sandbox.workspace import _rmtree, create, diff, prepare, reap_orphans, remove_root

from .conftest import LIMITS, dead_workspace, make_repo

# Durations unique to this run: other suites on the machine run `sleep 999` too.
_A, _B, _C = (f"{n}.{os.getpid()}" for n in (999, 998, 1000))


def _cmdlines(needle: bytes) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if needle in fh.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


async def test_background_process_dies_with_close(sandbox: BaseSandbox) -> None:
    await sandbox.exec(f"sleep {_A} & sleep {_B} & disown; echo started", timeout=5)
    for _ in range(200):  # the background job may not have exec()ed sleep yet
        if _cmdlines(f"sleep\x00{_A}".encode()):
            break
        await asyncio.sleep(0.01)
    assert _cmdlines(f"sleep\x00{_A}".encode())
    workspace = sandbox.workspace
    await sandbox.close()
    assert not _cmdlines(f"sleep\x00{_A}".encode()) and not _cmdlines(f"sleep\x00{_B}".encode())
    assert not workspace.exists()
    with pytest.raises(SandboxError):
        await sandbox.exec("true", timeout=1)


async def test_timeout_leaves_no_process(sandbox: BaseSandbox) -> None:
    result = await sandbox.exec(f"sleep {_C} | cat", timeout=1)
    assert result.timed_out
    assert not _cmdlines(f"sleep\x00{_C}".encode())


async def test_missing_repo_one_line(tmp_path: Path) -> None:
    sb = open_sandbox("local", tmp_path / "nope", unsafe_local=True)
    with pytest.raises(SandboxError, match="repository not found") as err:
        await sb.start()
    assert "\n" not in str(err.value)


async def test_missing_bwrap_one_line(repo: Path) -> None:
    sb = BwrapSandbox(repo)
    sb._bwrap = None  # as if bubblewrap were not on this machine
    with pytest.raises(SandboxError) as err:
        await sb.start()
    assert str(err.value) == MISSING_BWRAP


async def test_non_git_repo_gets_a_baseline(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "plain", git=False)
    ws = await prepare(src)
    try:
        await ws.baseline()
        (ws.path / "app.py").write_text("x = 5\n")
        (ws.path / "added.txt").write_text("new\n")
        patch = await ws.diff()
        assert "+x = 5" in patch and "added.txt" in patch
        assert not (src / "added.txt").exists()
    finally:
        ws.remove()


async def test_repo_config_cannot_run_code_on_host(repo: Path, tmp_path: Path) -> None:
    """A clean filter or hook planted in the workspace's .git must not run on the host."""
    ws = await prepare(repo)
    try:
        await ws.baseline()
        flag = tmp_path / "pwned"
        git = ws.path / ".git"
        for locked in (git / "config", git / "hooks"):  # as without root: no read-only lock
            if locked in mounts.mounted_under(ws.root):
                mounts.unmount(locked)
        config = (git / "config").read_text()
        config += f'[filter "x"]\n\tclean = touch {flag}\n[core]\n\tfsmonitor = touch {flag}\n'
        (git / "config").write_text(config)
        (ws.path / ".gitattributes").write_text("* filter=x\n")
        (git / "hooks").mkdir(exist_ok=True)
        (git / "hooks" / "pre-commit").write_text(f"#!/bin/sh\ntouch {flag}\n")
        (ws.path / "app.py").write_text("x = 9\n")
        patch = await diff(ws.path)
        assert "+x = 9" in patch
        assert not flag.exists()
    finally:
        ws.remove()


async def test_context_manager_closes(repo: Path) -> None:
    async with open_sandbox("bwrap", repo, limits=LIMITS) as sb:
        assert (await sb.exec("echo hi", timeout=5)).output == "hi\n"
        workspace = sb.workspace
    assert not workspace.exists()


async def test_diff_leaves_out_caches_but_keeps_real_changes(sandbox: BaseSandbox) -> None:
    r = await sandbox.exec(
        "python3 -c 'import app' && mkdir -p __pycache__ .pytest_cache "
        "&& echo x > __pycache__/app.cpython-311.pyc && echo y > .pytest_cache/v "
        "&& echo 'x = 2' > app.py && echo new > notes.txt",
        10,
    )
    assert r.exit_code == 0, r.output
    d = await sandbox.diff()
    assert "+x = 2" in d and "notes.txt" in d
    assert "__pycache__" not in d and ".pytest_cache" not in d


async def test_every_bwrap_process_is_in_its_cgroups(repo: Path) -> None:
    """The shell starts before its cgroup join; by the first command all of it is in."""
    async with open_sandbox("bwrap", repo, limits=LIMITS) as sb:
        assert isinstance(sb, BwrapSandbox)
        if sb._cgroups is None:
            pytest.skip("no writable cgroups on this host")
        await sb.exec("sleep 30 & echo started", timeout=5)
        assert sb._driver is not None and isinstance(sb._driver._scope, NamespaceScope)
        everyone = {host for host, _inner in NamespaceScope(sb._driver._scope.ns).members()}
        assert len(everyone) >= 4  # init, supervisor, worker, sleep
        for group in sb._cgroups.dirs:
            assert everyone <= {int(p) for p in (group / "cgroup.procs").read_text().split()}


def test_orphaned_workspaces_are_reaped() -> None:
    """A workspace whose owner died (kill -9) is unmounted and removed; a live one stays."""
    orphan, live = dead_workspace(), create(size_mb=16)
    try:
        assert orphan.name.startswith("corral-") and orphan.is_dir()
        gone = reap_orphans(orphan.parent)
        assert orphan in gone and not orphan.exists()
        assert orphan not in mounts.mounted_under(orphan.parent)
        assert live.root.exists() and live.root not in gone
    finally:
        live.remove()
        if orphan.exists():
            remove_root(orphan, capped=True)


def test_a_workspace_names_its_owner_from_the_first_instant(tmp_path: Path) -> None:
    """A label written after the dir was made left a gap: a kill -9 in between left a
    root (its tmpfs mounted) that no reaper could tell was orphaned. The name carries
    the owner, so a dir killed right after it was made, empty, is reaped too."""
    live = create(size_mb=16)
    try:
        assert dir_owner(live.root) == owner_token() and not (live.root / "owner").exists()
    finally:
        live.remove()
    dead = tmp_path / "corral-999999999-7-abc_1234"
    dead.mkdir()
    mine = tmp_path / f"corral-{owner_token().replace(':', '-')}-abc_1234"
    mine.mkdir()
    assert reap_orphans(tmp_path) == [dead] and not dead.exists() and mine.exists()


def test_a_legacy_workspace_being_labelled_is_not_reaped(tmp_path: Path) -> None:
    """Dirs an older corral made carry an `owner` label instead: one read while it was
    written (an empty file) once took a live spawn room for an orphan and unmounted it
    under a starting bwrap ("Can't find source path ... Permission denied")."""
    root = tmp_path / "corral-being-made"
    root.mkdir()
    (root / "owner").write_text("")
    assert reap_orphans(tmp_path) == [] and root.exists()
    (root / "owner").write_text(owner_token())
    assert reap_orphans(tmp_path) == [] and root.exists()
    (root / "owner").write_text("999999999:1")
    assert reap_orphans(tmp_path) == [root] and not root.exists()


def test_a_legacy_workspace_whose_labeller_died_mid_label_is_reaped(tmp_path: Path) -> None:
    """An older corral killed after writing its label's part but before the rename (or
    while writing the part): the root had no `owner`, so the reaper skipped it forever."""
    dead = 999_999_999  # above pid_max: no process has it
    roots = {name: tmp_path / f"corral-{name}" for name in ("whole", "cut", "live", "mine")}
    for root in roots.values():
        root.mkdir()
    (roots["whole"] / f".owner.{dead}.1").write_text(f"{dead}:5")
    (roots["cut"] / f".owner.{dead}.1").write_text("")
    (roots["live"] / f".owner.{os.getpid()}.1").write_text("")  # ours, being written
    (roots["mine"] / f".owner.{os.getpid()}.1").write_text(owner_token())  # renamed next
    assert sorted(reap_orphans(tmp_path)) == sorted([roots["whole"], roots["cut"]])
    assert roots["live"].exists() and roots["mine"].exists()
    assert not roots["whole"].exists() and not roots["cut"].exists()


def test_removing_a_workspace_never_touches_its_parent(tmp_path: Path) -> None:
    """A second remove (the root already gone) once chmod-ed /tmp to 0700, which locked
    every sandbox uid out of /tmp."""
    parent = tmp_path / "parent"
    parent.mkdir(mode=0o755)
    parent.chmod(0o755)
    root = parent / "corral-x"
    (root / "ws" / "locked").mkdir(parents=True)
    (root / "ws" / "locked" / "f").write_text("x")
    (root / "ws" / "locked").chmod(0)  # the agent made part of it unreadable
    _rmtree(root)
    assert not root.exists()
    _rmtree(root)  # again: already gone
    assert parent.stat().st_mode & 0o777 == 0o755


@pytest.mark.bwrap
async def test_close_while_bwrap_is_starting_leaves_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close from another task (a cancelled attempt) while bwrap is being launched."""
    from corral.sandbox import launcher as launching

    release = asyncio.Event()
    started: list[int] = []
    real = launching.Launcher.spawn

    async def held(self: launching.Launcher, *args: object, **kw: object) -> launching.Launched:
        done = await real(self, *args, **kw)  # type: ignore[arg-type]
        started.append(done.pid)
        await release.wait()  # bwrap runs; its answer has not reached the sandbox yet
        return done

    monkeypatch.setattr(launching.Launcher, "spawn", held)
    opened: list[int] = []  # pidfs inodes of the pidfds the launch opens
    real_open = os.pidfd_open

    def recording(pid: int, flags: int = 0) -> int:
        fd = real_open(pid, flags)
        opened.append(os.fstat(fd).st_ino)
        return fd

    monkeypatch.setattr(bwrap_module.os, "pidfd_open", recording)
    # Limits no warm pool of another test has: this start must launch its own bwrap.
    box = BwrapSandbox(repo, limits=LIMITS.model_copy(update={"memory_mb": LIMITS.memory_mb + 1}))
    starting = asyncio.create_task(box.start())
    for _ in range(500):
        if started:
            break
        await asyncio.sleep(0.01)
    assert started, "bwrap was never launched"
    await box.close()
    release.set()
    with pytest.raises(SandboxError):
        await starting
    for _ in range(300):
        if not _alive(started[0]):
            break
        await asyncio.sleep(0.01)
    assert not _alive(started[0]), "bwrap outlived a closed sandbox"
    assert opened and not _open_inodes() & set(opened), "a pidfd of the start was left open"


def _open_inodes() -> set[int]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.stat(f"/proc/self/fd/{fd}").st_ino)
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


@pytest.mark.bwrap
async def test_orphaned_sandbox_processes_are_reaped_and_live_ones_kept(
    repo: Path, tmp_path: Path
) -> None:
    """A sandbox's bwrap whose owner is gone (reparented to pid 1) is killed by the reaper
    (it runs at a process's first sandbox start and in `corral sandbox gc`)."""
    from corral.sandbox.base import SANDBOX_UID
    from corral.sandbox.launcher import launcher
    from corral.sandbox.procs import reap_orphan_sandboxes

    if os.geteuid() != 0:
        pytest.skip("sandboxes run as a uid of their own only as root")
    live = BwrapSandbox(repo, limits=LIMITS)
    await live.start()
    ws = Path(tempfile.mkdtemp(prefix="corral-orphan-"))
    os.chmod(ws, 0o777)
    script = (
        "bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin "
        "--symlink usr/lib /lib --symlink usr/lib64 /lib64 "
        f"--bind {ws} /workspace sleep 1000 </dev/null >/dev/null 2>&1 & exit 0"
    )
    try:
        owner = (SANDBOX_UID, SANDBOX_UID)
        done = await launcher(owner).spawn(["/bin/sh", "-c", script], {"PATH": "/usr/bin:/bin"},
                                           {}, setsid=True)  # fmt: skip
        os.close(done.pidfd)
        orphan = None
        for _ in range(300):
            orphan = _orphan_bwrap(str(ws))
            if orphan is not None:
                break
            await asyncio.sleep(0.01)
        assert orphan is not None, "the test could not make an orphaned bwrap"
        killed = reap_orphan_sandboxes(SANDBOX_UID, ws.parent)
        assert orphan in killed
        for _ in range(300):
            if not _alive(orphan):
                break
            await asyncio.sleep(0.01)
        assert not _alive(orphan)
        assert (await live.exec("echo still here", 5)).output.strip() == "still here"
    finally:
        await live.close()
        os.rmdir(ws)


def _orphan_bwrap(bound: str) -> int | None:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/status") as f:
                ppid = next(line.split()[1] for line in f if line.startswith("PPid:"))
        except (OSError, StopIteration):
            continue
        if argv[:1] == [b"bwrap"] and bound.encode() in argv and ppid == "1":
            return int(pid)
    return None
