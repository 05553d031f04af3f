"""The remediation pieces that need no sandbox: edits, test detection, the playbook's
decisions from a conversation, the PR body."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

from corral.domain import Message, ToolCall
from corral.tools import default_tools
from corral.workflows.cve import OsvDatabase, plan_fixes, scan_repo
from corral.workflows.cve.edits import build_edits, hashed_requirement_files
from corral.workflows.cve.playbook import RESULT_MARK, PlaybookModel, parse_spec
from corral.workflows.cve.pr import pr_body, result_from_reason
from corral.workflows.cve.tasks import (
    CvePayload,
    detect_tests,
    parse_instructions,
    render_instructions,
)
from corral.workflows.cve.tasks import TestPlan as Plan  # not a test class to collect
from corral.workflows.cve.verify import rescan

from .conftest import write

LOCK = """[[package]]
name = "requests"
version = "2.32.3"

[[package]]
name = "urllib3"
version = "1.26.4"
description = "HTTP library"
"""


def _payload(root: Path, db: OsvDatabase, tests: Plan) -> CvePayload:
    report = asyncio.run(scan_repo(root, db))
    plan = asyncio.run(plan_fixes(report, db))
    made = build_edits(root, plan)
    return CvePayload(
        repo=str(root), plan=plan, edits=tuple(made.edits), problems=tuple(made.problems),
        tests=tests,
        targets=tuple(sorted({(u.package, a.id) for u in plan.upgrades for a in u.advisories})),
        known=tuple(sorted({(f.package, f.advisory) for f in report.findings})),
        manifests=report.manifests, findings=len(report.findings),
    )  # fmt: skip


def test_edits_for_a_pin_and_a_transitive_lock_entry(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"requirements.txt": "idna==3.6  # pinned\n", "poetry.lock": LOCK})
    p = _payload(tmp_path, db, Plan(kind="none"))
    by_file = {e.file: e for e in p.edits}
    assert by_file["requirements.txt"].new == "idna==3.7  # pinned\n"
    lock = by_file["poetry.lock"]
    assert lock.lock and lock.old.startswith('name = "urllib3"')
    assert 'version = "1.26.4"' in lock.old and 'version = "1.26.4"' not in lock.new
    assert parse_instructions(render_instructions(p)) == p


def test_test_detection(tmp_path: Path) -> None:
    assert detect_tests(tmp_path).kind == "none"
    write(tmp_path, {"tests/test_a.py": "import unittest\n"})
    assert detect_tests(tmp_path).kind == "unittest"
    write(tmp_path, {"tests/test_b.py": "import pytest\n"})
    assert detect_tests(tmp_path).kind == "pytest"
    write(tmp_path, {"Makefile": "test:\n\tpython -m unittest\n"})
    assert detect_tests(tmp_path).command == "make test"
    assert detect_tests(tmp_path, labels=("test:tox -e py",)).command == "tox -e py"
    assert detect_tests(tmp_path, override="make check").kind == "override"


def test_test_detection_reads_only_the_repos_regular_files(tmp_path: Path) -> None:
    """A FIFO would block the host's planner forever, a link to /dev/zero would fill its
    memory, and a link out of the repo would have it read a host file."""
    repo, host = tmp_path / "repo", tmp_path / "host"
    write(repo, {"tests/test_a.py": "import unittest\n"})
    write(
        host, {"test_host.py": "import pytest\n", "pyproject.toml": "[tool.pytest.ini_options]\n"}
    )
    os.mkfifo(repo / "Makefile")
    (repo / "pyproject.toml").symlink_to(host / "pyproject.toml")
    (repo / "tests" / "test_link.py").symlink_to(host / "test_host.py")
    (repo / "tests" / "test_zero.py").symlink_to("/dev/zero")
    found: list[Plan] = []
    done = threading.Thread(target=lambda: found.append(detect_tests(repo)), daemon=True)
    done.start()
    done.join(30)
    assert [p.kind for p in found] == ["unittest"]


def _answer(model: PlaybookModel, messages: list[Message]) -> list[ToolCall]:
    specs = [t.spec for t in default_tools()]
    return list(asyncio.run(model.complete(messages, specs)).tool_calls)


def _after(messages: list[Message], calls: list[ToolCall], outputs: list[str]) -> list[Message]:
    out = [*messages, Message(role="assistant", tool_calls=tuple(calls))]
    for c, o in zip(calls, outputs, strict=True):
        out.append(Message(role="tool", content=o, tool_call_id=c.id, name=c.name))
    return out


def test_playbook_escalates_failing_tests_and_never_finishes(
    tmp_path: Path, db: OsvDatabase
) -> None:
    write(tmp_path, {"requirements.txt": "idna==3.6\n"})
    p = _payload(tmp_path, db, Plan(kind="unittest", command="python -m unittest"))
    model = PlaybookModel(p, lambda: db)
    msgs = [Message(role="system", content="s"), Message(role="user", content="u")]
    edit = _answer(model, msgs)
    assert [c.name for c in edit] == ["editor"]
    msgs = _after(msgs, edit, ["Edited requirements.txt: replaced 1 occurrence at line 1."])
    install = _answer(model, msgs)
    assert "--no-index" in install[0].arguments["command"]
    msgs = _after(msgs, install, ["corral-exit=0"])
    tests = _answer(model, msgs)
    assert tests[0].arguments["command"].count("python -m unittest") == 1
    msgs = _after(msgs, tests, ["FAILED (failures=1)\ncorral-exit=1"])
    final = _answer(model, msgs)
    assert [c.name for c in final] == ["escalate"]
    reason = final[0].arguments["reason"]
    assert "FAILED (failures=1)" in reason
    assert result_from_reason(reason)["tests"] == "failed"


def test_playbook_reports_no_tests_found_never_passed(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"requirements.txt": "idna==3.6\n"})
    p = _payload(tmp_path, db, Plan(kind="none"))
    model = PlaybookModel(p, lambda: db)
    msgs = [Message(role="user", content="u")]
    msgs = _after(msgs, _answer(model, msgs), ["Edited requirements.txt"])
    msgs = _after(msgs, _answer(model, msgs), ["corral-exit=0"])
    rescan = _answer(model, msgs)
    assert rescan[0].id.startswith("pb-0-rescan")
    installed = json.dumps([{"name": "idna", "version": "3.7"}])
    out = f"corral-installed: {installed}\n--- corral-file: requirements.txt\nidna==3.7\n"
    final = _answer(model, _after(msgs, rescan, [out]))
    assert [c.name for c in final] == ["finish"]
    result = result_from_reason(final[0].arguments["message"])
    assert result["tests"] == "no tests found" and result["fixed"] == [["idna", "PYSEC-2024-60"]]
    body = pr_body(p, result)
    assert "**no tests found**" in body and "passed" not in body
    assert "| idna | 3.6 → **3.7** |" in body and "CVE-2024-3651" in body


def test_rescan_that_still_sees_the_advisory_is_not_a_success(
    tmp_path: Path, db: OsvDatabase
) -> None:
    write(tmp_path, {"requirements.txt": "idna==3.6\n"})
    p = _payload(tmp_path, db, Plan(kind="none"))
    model = PlaybookModel(p, lambda: db)
    msgs = [Message(role="user", content="u")]
    msgs = _after(msgs, _answer(model, msgs), ["Edited requirements.txt"])
    msgs = _after(msgs, _answer(model, msgs), ["corral-exit=0"])
    rescan = _answer(model, msgs)
    stale = 'corral-installed: [{"name": "idna", "version": "3.6"}]\n'
    final = _answer(
        model, _after(msgs, rescan, [stale + "--- corral-file: requirements.txt\nidna==3.7\n"])
    )
    assert [c.name for c in final] == ["escalate"]
    assert "still vulnerable: idna PYSEC-2024-60" in final[0].arguments["reason"]
    assert RESULT_MARK in final[0].arguments["reason"]


def test_the_rescan_never_copies_a_manifest_linked_out_of_the_repo(
    tmp_path: Path, db: OsvDatabase
) -> None:
    """The host re-scans the repo's own files where the sandbox's output was cut: a
    manifest that is (by then) a link to a host file is left out, not read."""
    repo, host = tmp_path / "repo", tmp_path / "host"
    write(repo, {"requirements.txt": "idna==3.6\n"})
    write(host, {"requirements.txt": "idna==3.6\n"})
    p = _payload(repo, db, Plan(kind="none"))
    (repo / "requirements.txt").unlink()
    (repo / "requirements.txt").symlink_to(host / "requirements.txt")
    check = asyncio.run(rescan(p, db, "", truncated=True, fallback={}))
    assert check.remaining == [] and check.added == []
    (repo / "requirements.txt").unlink()
    (repo / "requirements.txt").write_text("idna==3.6\n")  # the same file, in the repo
    check = asyncio.run(rescan(p, db, "", truncated=True, fallback={}))
    assert check.remaining == [("idna", "PYSEC-2024-60")]


def test_hash_checking_is_judged_from_files_in_the_repository_only(tmp_path: Path) -> None:
    write(tmp_path / "host", {"hashed.txt": "idna==3.6 --hash=sha256:aaaa\n"})
    write(tmp_path / "repo", {"requirements.txt": "-r ../host/hashed.txt\n"})
    write(tmp_path / "repo", {"dev-requirements.txt": "-r inner/hashed.txt\n"})
    write(tmp_path / "repo", {"inner/hashed.txt": "idna==3.6 --hash=sha256:aaaa\n"})
    files = ("requirements.txt", "dev-requirements.txt")
    assert hashed_requirement_files(tmp_path / "repo", files) == ("dev-requirements.txt",)


def test_spec_parsing() -> None:
    assert parse_spec("playbook:cve") is None
    assert parse_spec("playbook:cve?then=openai/gpt-4o") == "openai/gpt-4o"


def test_hashes_that_could_not_be_refreshed_go_to_review_naming_the_package(
    tmp_path: Path, db: OsvDatabase
) -> None:
    write(tmp_path, {"requirements.txt": "idna==3.6\n"})
    gap = "pyyaml 5.4: hashes could not be refreshed (index unreachable (ConnectError))"
    p = _payload(tmp_path, db, Plan(kind="none")).model_copy(update={"hash_problems": (gap,)})
    # Even with a model to hand over to: no LLM can fetch hashes from inside the sandbox.
    model = PlaybookModel(p, lambda: db, then=lambda: PlaybookModel(p, lambda: db))
    msgs = [Message(role="user", content="u")]
    msgs = _after(msgs, _answer(model, msgs), ["Edited requirements.txt"])
    msgs = _after(msgs, _answer(model, msgs), ["corral-exit=0"])
    rescan = _answer(model, msgs)
    installed = json.dumps([{"name": "idna", "version": "3.7"}])
    out = f"corral-installed: {installed}\n--- corral-file: requirements.txt\nidna==3.7\n"
    final = _answer(model, _after(msgs, rescan, [out]))
    assert [c.name for c in final] == ["escalate"]
    reason = final[0].arguments["reason"]
    assert reason.splitlines()[0] == f"Hashes could not be refreshed: {gap}."
    assert result_from_reason(reason)["fixed"] == [["idna", "PYSEC-2024-60"]]
    assert gap in pr_body(p, result_from_reason(reason))
