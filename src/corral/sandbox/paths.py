"""Host-side file access for paths an agent names, without ever leaving the workspace.

The host (often root) reads and writes on the agent's behalf, so a symlink or `..` the
agent planted must never make it touch a host file. Paths are resolved and checked, then
opened one component at a time with O_NOFOLLOW, so a symlink swapped in after the check
is refused too.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path

from corral.domain import SandboxError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _relative(workdir: str, path: str) -> str:
    """The path relative to the workspace root, or SandboxError if it points elsewhere."""
    if not path or "\x00" in path:
        raise SandboxError(f"invalid path: {path!r}")
    if path.startswith("/"):
        base = posixpath.normpath(workdir)
        norm = posixpath.normpath(path)
        if norm == base:
            return "."
        if not norm.startswith(base.rstrip("/") + "/"):
            raise SandboxError(f"{path}: outside the workspace ({workdir})")
        path = norm[len(base.rstrip("/")) + 1 :]
    rel = posixpath.normpath(path)
    if rel == ".." or rel.startswith("../"):
        raise SandboxError(f"{path}: outside the workspace ('..' escapes it)")
    return rel


def resolve(workspace: Path, workdir: str, path: str) -> Path:
    """Host path for an agent path; symlinks are followed only while they stay inside."""
    rel = _relative(workdir, path)
    root = os.path.realpath(workspace)
    real = os.path.realpath(os.path.join(root, rel))
    if real != root and not real.startswith(root + "/"):
        raise SandboxError(f"{path}: resolves outside the workspace (through a symlink)")
    return Path(real)


def _parts(workspace: Path, real: Path) -> list[str]:
    root = Path(os.path.realpath(workspace))
    return [] if real == root else list(real.relative_to(root).parts)


def _open_dir_chain(
    workspace: Path, parts: list[str], *, create: bool, owner: tuple[int, int] | None, path: str
) -> int:
    """Open the directory holding the last part, refusing any symlink on the way."""
    fd = os.open(os.path.realpath(workspace), _DIR_FLAGS)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise SandboxError(f"{path}: no such file or directory") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                if owner is not None:
                    os.fchown(nxt, *owner)
            except OSError as exc:
                raise _error(path, exc) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _error(path: str, exc: OSError) -> SandboxError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return SandboxError(f"{path}: refused (a symlink or non-directory on the way)")
    if exc.errno == errno.EISDIR:
        return SandboxError(f"{path}: is a directory")
    if exc.errno == errno.ENOENT:
        return SandboxError(f"{path}: no such file or directory")
    return SandboxError(f"{path}: {exc.strerror or exc}")


def read_bytes(workspace: Path, workdir: str, path: str, *, max_bytes: int) -> bytes:
    """Read a regular file inside the workspace; refuse FIFOs, devices and huge files."""
    real = resolve(workspace, workdir, path)
    parts = _parts(workspace, real)
    if not parts:
        raise SandboxError(f"{path}: is a directory")
    dfd = _open_dir_chain(workspace, parts[:-1], create=False, owner=None, path=path)
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags, dir_fd=dfd)
        except OSError as exc:
            raise _error(path, exc) from None
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SandboxError(f"{path}: {kind}")
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > max_bytes:
            raise SandboxError(
                f"{path}: too large to read ({st.st_size:,} bytes; the limit is {max_bytes:,})"
            )
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SandboxError(f"{path}: too large to read (over {max_bytes:,} bytes)")
    return data


def write_bytes(
    workspace: Path, workdir: str, path: str, data: bytes, *, owner: tuple[int, int] | None
) -> None:
    """Write a file inside the workspace, creating parent directories there only.

    `owner` (uid, gid) is given when the sandbox runs as another user than the host, so
    files the host writes stay editable from inside.
    """
    real = resolve(workspace, workdir, path)
    parts = _parts(workspace, real)
    if not parts:
        raise SandboxError(f"{path}: is a directory")
    dfd = _open_dir_chain(workspace, parts[:-1], create=True, owner=owner, path=path)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(parts[-1], flags | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        except OSError as exc:
            raise _error(path, exc) from None
    finally:
        os.close(dfd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SandboxError(f"{path}: not a regular file")
    with os.fdopen(fd, "wb") as fh:
        if owner is not None:
            os.fchown(fh.fileno(), *owner)
        fh.write(data)
