"""Stacked parts: each part starts from the repo with everything it depends on done.

When the plan becomes a campaign over a git repo, a *stack* dir is laid out under
`HOME/refactor/NAME-TIME/`: `base/`, a clone at the repo's HEAD, for the parts that
depend on nothing, and an empty `parts/ID/` for each other part (a task's repo has to
exist when the campaign is created). A part's delivery (task kind `refactor`):

1. commits the part's diff on its base as `corral/refactor/NAME/ID` in the repo;
2. notes that commit in `state.json`, under a lock (several workers may deliver at once);
3. for each part whose parents are now all delivered, checks out its base into its
   empty `parts/ID/`: the parent's commit, or the merge of its parents' commits (parts
   change different files, so these merges are clean). The orchestrator starts a part
   only after its parents succeeded, i.e. after this, so a part never sees a half-made
   dir.
4. once every part is in, `corral/refactor/NAME/all` holds all of them merged.

A part whose parents' changes clash (an agent changed files outside its part) gets a
`CORRAL_PART_BLOCKED.txt` saying so instead of a checkout: its files are missing, so the
playbook escalates it to review. Every step can run twice (a crash between delivery and
its record): commits are found again by tree and parents, a checked-out dir is left as it
is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corral.domain import ConfigError, CorralError
from corral.workflows.hostgit import GitError, commit_on, git, git_out, head_commit

KIND = "refactor"
BRANCH_PREFIX = "corral/refactor"
BLOCKED = "CORRAL_PART_BLOCKED.txt"  # left in a part's dir that could not be prepared
ALL = "all"  # the branch with every part (git refs cannot be both a branch and a dir)


class StackError(CorralError):
    """A part cannot be stacked (not in the stack, or delivered differently before)."""


@dataclass(frozen=True)
class Stack:
    """Where a campaign's parts live, and what they start from."""

    root: Path
    repo: Path  # the user's repository: branches land here
    base: str  # the commit every part builds on
    name: str

    @property
    def base_dir(self) -> Path:
        return self.root / "base"

    def part_dir(self, part: str) -> Path:
        return self.root / "parts" / part

    def branch(self, part: str = ALL) -> str:
        return f"{BRANCH_PREFIX}/{self.name}/{part}"

    def payload(self) -> dict[str, str]:
        return {"stack": str(self.root), "repo": str(self.repo), "base": self.base,
                "name": self.name}  # fmt: skip

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Stack:
        return cls(Path(data["stack"]), Path(data["repo"]), str(data["base"]), str(data["name"]))


def lay_out(home: Path, repo: Path, name: str, parts: Mapping[str, tuple[str, ...]]) -> Stack:
    """The stack dir for a new campaign (`parts`: id -> the ids it depends on)."""
    base = head_commit(repo)
    if base is None:
        raise ConfigError(f"{repo}: stacked parts need a git repository with a commit")
    raw = git_out(repo, "status", "--porcelain", "--untracked-files=no")
    changed = raw.decode(errors="replace")  # not stripped: each line starts "XY path"
    if changed:
        first = changed.splitlines()[0][3:]
        raise ConfigError(f"{repo} has uncommitted changes ({first}, ...): the parts start "
                          "from HEAD, so commit or stash them first")  # fmt: skip
    prefix = f"{BRANCH_PREFIX}/{name}"
    taken = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{prefix}/")
    if taken:
        first = taken.splitlines()[0]
        raise ConfigError(f"branches {prefix}/* exist from an earlier run (e.g. {first}): "
                          "delete them or rename the refactor")  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = home.resolve() / "refactor" / f"{name}-{stamp}"
    if root.exists():
        raise ConfigError(f"{root} exists already: plan again in a second")
    stack = Stack(root, repo.resolve(), base, name)
    (root / "parts").mkdir(parents=True)
    _checkout(stack, stack.base_dir, base)
    for part, deps in parts.items():
        if deps:
            stack.part_dir(part).mkdir()
    _write_state(stack, {"parts": {p: list(d) for p, d in parts.items()}, "done": {}})
    return stack


def _checkout(stack: Stack, target: Path, commit: str) -> None:
    """A clone of the repo at `commit` (objects hardlinked): a whole repo of its own, so
    git works inside the sandbox's copy (a worktree's `.git` points at a host path)."""
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # a checkout a crash cut short
    git(stack.repo, "clone", "--quiet", "--local", "--no-checkout", str(stack.repo), str(tmp))
    git(tmp, "checkout", "--quiet", "--detach", commit)
    os.replace(tmp, target)  # over the empty placeholder, in one step


def start_dir(stack: Stack, part: str, deps: tuple[str, ...]) -> Path:
    return stack.part_dir(part) if deps else stack.base_dir


@contextlib.contextmanager
def _locked(stack: Stack) -> Iterator[None]:
    with open(stack.root / "state.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_state(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((stack.root / "state.json").read_text())
    return data


def _write_state(stack: Stack, state: Mapping[str, Any]) -> None:
    tmp = stack.root / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, stack.root / "state.json")


def _commit(stack: Stack, tree: str, parents: list[str], message: str) -> str:
    args = [a for p in parents for a in ("-p", p)]
    return git(stack.repo, "commit-tree", tree, *args, "-m", message)


def _merged(stack: Stack, commits: list[str], message: str) -> str:
    """One commit holding every one of `commits` (the first itself when alone)."""
    result = commits[0]
    for other in commits[1:]:
        tree = git(stack.repo, "merge-tree", "--write-tree", result, other).splitlines()[0]
        result = _commit(stack, tree, [result, other], message)
    return result


def _base_of(stack: Stack, state: dict[str, Any], part: str) -> str:
    """What `part` starts from, made once and kept (a merge commit's hash has a time in it)."""
    deps = state["parts"][part]
    if not deps:
        return stack.base
    bases = state.setdefault("bases", {})
    if part not in bases:
        commits = [state["done"][d] for d in deps]
        bases[part] = _merged(stack, commits, f"base of refactor part {part}")
    return str(bases[part])


def deliver_part(stack: Stack, part: str, diff: str, message: str) -> dict[str, Any]:
    """Steps 1-4 of the module docstring, under the stack's lock."""
    with _locked(stack):
        state = _read_state(stack)
        if part not in state["parts"]:
            raise StackError(f"part {part} is not in the stack at {stack.root}")
        base = _base_of(stack, state, part)
        commit = commit_on(stack.repo, base, diff, stack.branch(part), message)
        before = state["done"].get(part)
        if before not in (None, commit) and _started_after(stack, state, part):
            raise StackError(f"part {part} was delivered before with a different change, and "
                             "parts built on it have started from that one")  # fmt: skip
        state["done"][part] = commit
        _write_state(stack, state)
        ready: list[str] = []
        blocked: dict[str, str] = {}
        for other, deps in sorted(state["parts"].items()):
            if other in state["done"] or not deps or not all(d in state["done"] for d in deps):
                continue
            target = stack.part_dir(other)
            if _prepared(stack, other):
                continue  # checked out already (a repeated delivery)
            try:
                start = _base_of(stack, state, other)
                _write_state(stack, state)  # the base is known before anything is checked out
                _checkout(stack, target, start)
                ready.append(other)
            except GitError as exc:  # its parents' changes clash: it must not start blind
                (target / BLOCKED).write_text(f"corral could not prepare this part: {exc}\n")
                blocked[other] = str(exc)
        out: dict[str, Any] = {
            "branch": stack.branch(part), "commit": commit, "base": base, "unblocked": ready,
        }  # fmt: skip
        if blocked:
            out["blocked"] = blocked
        if len(state["done"]) == len(state["parts"]):
            leaves = [state["done"][p] for p in sorted(state["parts"]) if not _needed(state, p)]
            whole = _merged(stack, leaves, f"refactor {stack.name}: every part")
            git(stack.repo, "update-ref", f"refs/heads/{stack.branch()}", whole)
            out["all"] = {"branch": stack.branch(), "commit": whole}
        return out


def _prepared(stack: Stack, part: str) -> bool:
    """Its starting point is made (a checkout, or the note that it could not be)."""
    where = stack.part_dir(part)
    return where.is_dir() and any(where.iterdir())


def _started_after(stack: Stack, state: Mapping[str, Any], part: str) -> bool:
    """Some part that depends on `part` has its starting point made already."""
    return any(part in deps and _prepared(stack, o) for o, deps in state["parts"].items())


def _needed(state: Mapping[str, Any], part: str) -> bool:
    """Some other part builds on this one (so its commit is in that one's)."""
    return any(part in deps for deps in state["parts"].values())
