"""Stacked parts on a real git repo: bases, merges, the `all` branch, repeats."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.trees import write_tree

from corral.workflows.refactor.stack import deliver_part, lay_out


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def _diff(path: str, old: str, new: str) -> str:
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1 +1 @@\n-{old}\n+{new}\n")  # fmt: skip


def test_a_part_with_two_parents_starts_from_both_and_all_holds_everything(
    tmp_path: Path,
) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "old\n", "b.py": "old\n", "c.py": "old\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    stack = lay_out(tmp_path / "home", repo, "demo", {"pa": (), "pb": (), "pc": ("pa", "pb")})
    assert (stack.base_dir / "a.py").read_text() == "old\n"
    assert not any(stack.part_dir("pc").iterdir())  # exists (a campaign checks), empty

    first = deliver_part(stack, "pa", _diff("a.py", "old", "new"), "part a")
    assert first["unblocked"] == [] and "all" not in first
    assert deliver_part(stack, "pa", _diff("a.py", "old", "new"), "part a") == first  # repeat
    second = deliver_part(stack, "pb", _diff("b.py", "old", "new"), "part b")
    assert second["unblocked"] == ["pc"]
    start = stack.part_dir("pc")
    assert [(start / f).read_text() for f in ("a.py", "b.py", "c.py")] == [
        "new\n",
        "new\n",
        "old\n",
    ]

    last = deliver_part(stack, "pc", _diff("c.py", "old", "new"), "part c")
    parents = _git(repo, "show", "-s", "--format=%P", last["commit"] + "^").split()
    assert sorted(parents) == sorted([first["commit"], second["commit"]])  # c's base: a + b
    assert last["all"]["branch"] == "corral/refactor/demo/all"
    for f in ("a.py", "b.py", "c.py"):
        assert _git(repo, "show", f"corral/refactor/demo/all:{f}") == "new"
        assert (repo / f).read_text() == "old\n"  # the user's checkout is untouched


def test_a_part_whose_parents_clash_is_blocked_not_started_blind(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "old\n", "b.py": "old\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    stack = lay_out(tmp_path / "home", repo, "demo", {"pa": (), "pb": (), "pc": ("pa", "pb")})
    deliver_part(stack, "pa", _diff("a.py", "old", "from a"), "part a")
    second = deliver_part(stack, "pb", _diff("a.py", "old", "from b"), "part b")  # a.py again
    assert second["unblocked"] == [] and "pc" in second["blocked"]
    left = sorted(p.name for p in stack.part_dir("pc").iterdir())
    assert left == ["CORRAL_PART_BLOCKED.txt"]  # no checkout: its files are missing


def test_the_playbooks_rewrite_keeps_line_ends_and_undecodable_bytes(tmp_path: Path) -> None:
    from corral.workflows.refactor.playbook import _SCRIPT

    f = tmp_path / "a.py"
    f.write_bytes(b"x = 1\r\nold_call(1)  # caf\xe9\r\n")
    job = {"files": ["a.py"], "find": r"\bold_call\(", "replace": "new_call("}
    import json

    done = subprocess.run(["python3", "-c", _SCRIPT, json.dumps(job)], cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f.read_bytes() == b"x = 1\r\nnew_call(1)  # caf\xe9\r\n"


def test_a_repo_with_uncommitted_changes_or_old_branches_is_not_stacked(tmp_path: Path) -> None:
    import pytest

    from corral.domain import ConfigError

    repo = write_tree(tmp_path / "repo", {"a.py": "old\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    (repo / "a.py").write_text("edited\n")
    with pytest.raises(ConfigError, match=r"uncommitted changes \(a\.py"):
        lay_out(tmp_path / "home", repo, "demo", {"pa": ()})
    _git(repo, "checkout", "--", "a.py")
    _git(repo, "branch", "corral/refactor/demo/001-old")
    with pytest.raises(ConfigError, match="exist from an earlier run"):
        lay_out(tmp_path / "home", repo, "demo", {"pa": ()})


def test_a_part_redelivered_differently_after_its_child_started_is_refused(
    tmp_path: Path,
) -> None:
    import pytest

    from corral.workflows.refactor.stack import StackError

    repo = write_tree(tmp_path / "repo", {"a.py": "old\n", "b.py": "old\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    stack = lay_out(tmp_path / "home", repo, "demo", {"pa": (), "pb": ("pa",)})
    deliver_part(stack, "pa", _diff("a.py", "old", "v1"), "part a")
    assert (stack.part_dir("pb") / "a.py").read_text() == "v1\n"
    with pytest.raises(StackError, match="delivered before with a different change"):
        deliver_part(stack, "pa", _diff("a.py", "old", "v2"), "part a")
