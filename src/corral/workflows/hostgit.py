"""Git on the host, over repositories we do not trust.

Every call runs with `GIT_FLAGS` (no hooks, no fsmonitor, no external diff, no pager, no
signing), a clean environment and a throwaway HOME, so nothing a repository or its
config carries runs on the host. Commits are made without touching the user's checkout:
a private index, `git apply --cached`, `commit-tree`, `update-ref`.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from corral.domain import CorralError
from corral.sandbox.workspace import git_env

GIT_FLAGS = (
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.pager=cat",
    "-c", "diff.external=", "-c", "safe.directory=*", "-c", "commit.gpgsign=false",
    "-c", "core.autocrlf=false",
)  # fmt: skip


class GitError(CorralError):
    """A host git command failed (the message ends with git's last line)."""


async def run_git(
    repo: Path, *args: str, env: Mapping[str, str], stdin: bytes | None = None,
    timeout_s: float = 300.0,
) -> str:  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        "git", *GIT_FLAGS, "-C", str(repo), *args,
        env=dict(env), stdin=asyncio.subprocess.PIPE if stdin is not None else
        asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise GitError(f"git {args[0]} took over {timeout_s:g}s (killed)") from None
    if proc.returncode != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
    return out.decode(errors="replace").strip()


async def is_git_repo(repo: Path) -> bool:
    try:
        with tempfile.TemporaryDirectory() as home:
            await run_git(repo, "rev-parse", "--verify", "HEAD", env=git_env(Path(home)))
        return True
    except GitError:
        return False


async def commit_branch(repo: Path, diff: str, branch: str, message: str) -> str:
    """`commit_on` HEAD, in a thread."""

    def go() -> str:
        return commit_on(repo, git(repo, "rev-parse", "--verify", "HEAD^{commit}"), diff,
                         branch, message)  # fmt: skip

    return await asyncio.to_thread(go)


async def remote_url(repo: Path, remote: str) -> str | None:
    try:
        with tempfile.TemporaryDirectory() as home:
            return await run_git(repo, "remote", "get-url", remote, env=git_env(Path(home))) or None
    except GitError:
        return None


async def push(repo: Path, remote: str, branch: str, auth_header: str | None) -> None:
    """Force-push the branch; the token rides in an env-only git config, never in argv."""
    with tempfile.TemporaryDirectory() as home:
        env = git_env(Path(home))
        if auth_header:
            env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": auth_header}  # fmt: skip
        await run_git(repo, "push", "--force", "--quiet", remote,
                   f"refs/heads/{branch}:refs/heads/{branch}", env=env)  # fmt: skip


async def current_branch(repo: Path) -> str:
    """The checked-out branch (`main` when detached or unknown)."""
    try:
        with tempfile.TemporaryDirectory() as home:
            name = await run_git(repo, "symbolic-ref", "--short", "HEAD", env=git_env(Path(home)))
        return name or "main"
    except GitError:
        return "main"


# -- the same, blocking (for code that runs in a thread) ---------------------------


def git_out(repo: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="corral-git-") as home:
        env = git_env(Path(home)) | ({"GIT_INDEX_FILE": str(index)} if index else {})
        try:
            proc = subprocess.run(
                ["git", *GIT_FLAGS, "-C", str(repo), *args], input=stdin, capture_output=True,
                env=env, timeout=300, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]} in {repo}: {type(exc).__name__}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} in {repo}: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def git(repo: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
    return git_out(repo, *args, stdin=stdin, index=index).decode(errors="replace").strip()


def commit_on(repo: Path, base: str, diff: str, branch: str, message: str) -> str:
    """One commit on `base` holding `diff`, at refs/heads/BRANCH; the checkout is
    untouched. Re-running with the same diff keeps the existing commit (same tree and
    parent)."""
    with tempfile.TemporaryDirectory(prefix="corral-index-") as tmp:
        index = Path(tmp) / "index"
        git(repo, "read-tree", base, index=index)
        if diff.strip():
            git(repo, "apply", "--cached", "--binary", "--whitespace=nowarn", "-",
                stdin=diff.encode(), index=index)  # fmt: skip
        tree = git(repo, "write-tree", index=index)
    ref = f"refs/heads/{branch}"
    try:
        old = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
        if git(repo, "show", "-s", "--format=%T %P", old) == f"{tree} {base}":
            return old
    except GitError:
        pass
    commit = git(repo, "commit-tree", tree, "-p", base, "-m", message)
    git(repo, "update-ref", ref, commit)
    return commit


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree holding `path`, or None outside any."""
    try:
        return Path(git(path, "rev-parse", "--show-toplevel")).resolve()
    except GitError:
        return None


def head_commit(repo: Path) -> str | None:
    """The repo's HEAD commit, or None when it is not a git repo with a commit."""
    if not (repo / ".git").exists():
        return None
    try:
        return git(repo, "rev-parse", "--verify", "HEAD^{commit}")
    except GitError:
        return None
