"""Secrets in real git diffs: where one was added, and restoring redacted lines that the
repository already holds."""

from __future__ import annotations

from pathlib import Path

from tests.unit.policy.gitrepo import make_repo, staged_diff

from corral.orchestrator.policy import Redactor
from corral.orchestrator.policy.diffs import added_secret, restore_redacted

GH = "ghp_" + "Q7" * 18
VALUE = "deploy-value-5e8d1c2b"
R = Redactor({VALUE: "env:DEPLOY_TOKEN"})


def test_the_first_added_secret_is_found_with_file_and_line(tmp_path: Path) -> None:
    lines = [f"line {i}\n" for i in range(1, 30)]
    repo = make_repo(tmp_path, {"a.py": "".join(lines)})
    changed = lines.copy()
    changed[19] = f"TOKEN = '{GH}'\n"
    diff = staged_diff(repo, {"a.py": "".join(changed), "new.env": f"X=1\nDEPLOY={VALUE}\n"})
    assert added_secret(diff, R) == "a.py:20 (github_token)"
    only_new = staged_diff(repo, {"new.env": f"X=1\nDEPLOY={VALUE}\n"})
    assert added_secret(only_new, R) == "new.env:2 (env:DEPLOY_TOKEN)"
    assert added_secret(staged_diff(repo, {"a.py": "".join(lines[:5])}), R) is None


def test_secrets_the_repo_already_had_are_not_added(tmp_path: Path) -> None:
    """Removing a secret, or editing next to one, adds nothing: it is delivered."""
    repo = make_repo(tmp_path, {"c.py": f"A = 1\nKEY = '{GH}'\nB = 2\n"})
    edit = staged_diff(repo, {"c.py": f"A = 10\nKEY = '{GH}'\nB = 20\n"})
    removal = staged_diff(repo, {"c.py": "A = 1\nB = 2\n"})
    assert GH in edit and GH in removal
    assert added_secret(edit, R) is None and added_secret(removal, R) is None
    # a stored (redacted) copy: the added line is clean, the context is restored exactly
    stored = R.redact(edit)
    assert GH not in stored and added_secret(stored, R, redacted=True) is None
    assert restore_redacted(stored, repo, R) == edit
    assert restore_redacted(R.redact(removal), repo, R) == removal


def test_a_stored_copy_with_a_redacted_added_line_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "x\n"})
    stored = R.redact(staged_diff(repo, {"a.txt": f"x\n{VALUE}\n"}))
    assert added_secret(stored, R) is None  # nothing secret left in it...
    assert added_secret(stored, R, redacted=True) == "a.txt:2 (env:DEPLOY_TOKEN)"  # ...but
    assert restore_redacted(stored, repo, R) is None


def test_restoring_fails_when_the_line_no_longer_matches(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"c.py": f"A = 1\nKEY = '{GH}'\nB = 2\n"})
    stored = R.redact(staged_diff(repo, {"c.py": f"A = 10\nKEY = '{GH}'\nB = 20\n"}))
    (repo / "c.py").write_text("A = 1\nKEY = 'plain'\nB = 2\n")
    assert restore_redacted(stored, repo, R) is None
    (repo / "c.py").unlink()
    assert restore_redacted(stored, repo, R) is None


def test_crlf_lines_and_a_diff_without_secrets_pass_through(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"w.txt": f"a\r\n{GH}\r\nb\r\n"})
    diff = staged_diff(repo, {"w.txt": f"a\r\n{GH}\r\nc\r\n"})
    assert restore_redacted(R.redact(diff), repo, R) == diff
    plain = staged_diff(repo, {"w.txt": "z\r\n"})
    assert restore_redacted(plain, repo, R) is plain
