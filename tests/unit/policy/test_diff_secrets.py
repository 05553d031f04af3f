"""Secrets in real git diffs: where one was added, and restoring redacted lines that the
repository already holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from corral.orchestrator.policy import Redactor
from corral.orchestrator.policy.diffs import added_secret, restore_redacted

GH = "ghp_" + "Q7" * 18
VALUE = "deploy-value-5e8d1c2b"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
R = Redactor({VALUE: "env:DEPLOY_TOKEN"})


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


def _diff(repo: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    out = subprocess.run(["git", "diff", "--cached"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=repo, check=True)
    return out.stdout.decode()


def test_the_first_added_secret_is_found_with_file_and_line(tmp_path: Path) -> None:
    lines = [f"line {i}\n" for i in range(1, 30)]
    repo = _repo(tmp_path, {"a.py": "".join(lines)})
    changed = lines.copy()
    changed[19] = f"TOKEN = '{GH}'\n"
    diff = _diff(repo, {"a.py": "".join(changed), "new.env": f"X=1\nDEPLOY={VALUE}\n"})
    assert added_secret(diff, R) == "a.py:20 (github_token)"
    only_new = _diff(repo, {"new.env": f"X=1\nDEPLOY={VALUE}\n"})
    assert added_secret(only_new, R) == "new.env:2 (env:DEPLOY_TOKEN)"
    assert added_secret(_diff(repo, {"a.py": "".join(lines[:5])}), R) is None


def test_secrets_the_repo_already_had_are_not_added(tmp_path: Path) -> None:
    """Removing a secret, or editing next to one, adds nothing: it is delivered."""
    repo = _repo(tmp_path, {"c.py": f"A = 1\nKEY = '{GH}'\nB = 2\n"})
    edit = _diff(repo, {"c.py": f"A = 10\nKEY = '{GH}'\nB = 20\n"})
    removal = _diff(repo, {"c.py": "A = 1\nB = 2\n"})
    assert GH in edit and GH in removal
    assert added_secret(edit, R) is None and added_secret(removal, R) is None
    # a stored (redacted) copy: the added line is clean, the context is restored exactly
    stored = R.redact(edit)
    assert GH not in stored and added_secret(stored, R, redacted=True) is None
    assert restore_redacted(stored, repo, R) == edit
    assert restore_redacted(R.redact(removal), repo, R) == removal


def test_a_stored_copy_with_a_redacted_added_line_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"a.txt": "x\n"})
    stored = R.redact(_diff(repo, {"a.txt": f"x\n{VALUE}\n"}))
    assert added_secret(stored, R) is None  # nothing secret left in it...
    assert added_secret(stored, R, redacted=True) == "a.txt:2 (env:DEPLOY_TOKEN)"  # ...but
    assert restore_redacted(stored, repo, R) is None


def test_restoring_fails_when_the_line_no_longer_matches(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"c.py": f"A = 1\nKEY = '{GH}'\nB = 2\n"})
    stored = R.redact(_diff(repo, {"c.py": f"A = 10\nKEY = '{GH}'\nB = 20\n"}))
    (repo / "c.py").write_text("A = 1\nKEY = 'plain'\nB = 2\n")
    assert restore_redacted(stored, repo, R) is None
    (repo / "c.py").unlink()
    assert restore_redacted(stored, repo, R) is None


def test_crlf_lines_and_a_diff_without_secrets_pass_through(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"w.txt": f"a\r\n{GH}\r\nb\r\n"})
    diff = _diff(repo, {"w.txt": f"a\r\n{GH}\r\nc\r\n"})
    assert restore_redacted(R.redact(diff), repo, R) == diff
    plain = _diff(repo, {"w.txt": "z\r\n"})
    assert restore_redacted(plain, repo, R) is plain
