"""What one remediation task carries: the plan, the exact edits, how to install and test.

The payload travels inside the task's instructions (a fenced JSON block after the prose),
so a task is self-contained: a resumed attempt, another worker, or an LLM taking over
all see the same plan, and the event log shows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from corral.domain import ConfigError, Frozen
from corral.workflows.cve.manifests import repo_file
from corral.workflows.cve.models import FixPlan, ScanReport

PAYLOAD_FENCE = "```json corral-cve"
TEST_LABEL = "test:"  # a task label `test:CMD` overrides test detection


class Edit(Frozen):
    """Replace `old` with `new` in `file` (exact text, unique in the file)."""

    file: str
    line: int
    package: str
    old: str
    new: str
    lock: bool = False
    hashes: bool = False  # the edit also replaced the entry's file hashes


class TestPlan(Frozen):
    """How to run a repository's tests; `kind` none means there are none to run."""

    kind: Literal["override", "make", "pytest", "unittest", "tox", "none"]
    command: str = ""


class CvePayload(Frozen):
    """Everything the playbook and the delivery need, decided on the host at plan time."""

    repo: str
    plan: FixPlan
    edits: tuple[Edit, ...] = ()
    problems: tuple[str, ...] = ()  # planned upgrades we could not turn into an edit
    tests: TestPlan = TestPlan(kind="none")
    requirement_files: tuple[str, ...] = ()  # installed with pip -r, in order
    hashed_requirements: tuple[str, ...] = ()  # of those, the ones pip checks hashes of
    hash_checks: tuple[tuple[str, str], ...] = ()  # (lock file, package) with new hashes
    hash_problems: tuple[str, ...] = ()  # bumps whose new hashes could not be had
    pins_file: str = ".corral/pins.txt"  # used when the repo has no requirements files
    install: Literal["wheelhouse", "index"] = "wheelhouse"
    wheel_problems: tuple[str, ...] = ()  # e.g. packages with only sdists
    targets: tuple[tuple[str, str], ...] = ()  # (package, advisory) the PR must clear
    known: tuple[tuple[str, str], ...] = ()  # every (package, advisory) found before
    manifests: tuple[str, ...] = ()  # every manifest the scan read (for the re-scan)
    test_timeout_s: float = 600
    db: tuple[str, ...] = ()  # advisory sources for the re-scan (host side)
    findings: int = 0


def detect_tests(root: Path, labels: Sequence[str] = (), override: str | None = None) -> TestPlan:
    """The repo's own way to run its tests: a label/field override, then Make, pytest,
    unittest, tox. Nothing found is `none`, which is never reported as a pass."""
    for label in labels:
        if label.startswith(TEST_LABEL) and label[len(TEST_LABEL) :].strip():
            override = label[len(TEST_LABEL) :].strip()
    if override:
        return TestPlan(kind="override", command=override)
    make = root / "Makefile"
    if re.search(r"(?m)^test\s*:", _read(make, root)):
        return TestPlan(kind="make", command="make test")
    tests = [p for p in _test_files(root)]
    py = _read(root / "pyproject.toml", root)
    pytest_cfg = (
        (root / "pytest.ini").is_file()
        or (root / "conftest.py").is_file()
        or "[tool.pytest" in py
        or "[tool:pytest]" in _read(root / "setup.cfg", root)
    )
    if pytest_cfg or any("import pytest" in _read(p, root) for p in tests[:50]):
        return TestPlan(kind="pytest", command="python -m pytest -q -p no:cacheprovider")
    if tests:
        dirs = {p.parent for p in tests}
        if len(dirs) == 1 and (d := dirs.pop()) != root and not (d / "__init__.py").is_file():
            # discover only imports packages; a plain tests/ folder is its own top level.
            rel = d.relative_to(root).as_posix()
            return TestPlan(kind="unittest", command=f"python -m unittest discover -v -s {rel}")
        return TestPlan(kind="unittest", command="python -m unittest discover -v")
    if (root / "tox.ini").is_file():
        return TestPlan(kind="tox", command="tox -q")
    return TestPlan(kind="none")


_MAX_READ = 1 << 20


def _test_files(root: Path) -> list[Path]:
    skip = {".git", ".corral", ".venv", "venv", "node_modules", "site-packages"}
    found: list[Path] = []
    for p in sorted(root.rglob("test*.py")):
        if not skip.intersection(p.relative_to(root).parts):
            found.append(p)
    return found


def _read(path: Path, root: Path) -> str:
    """A regular file of the repo, its first MB; "" for anything else."""
    if not repo_file(path, root):
        return ""
    try:
        with path.open(errors="replace") as f:
            return f.read(_MAX_READ)
    except OSError:
        return ""


def requirement_files(report: ScanReport) -> tuple[str, ...]:
    """Top-level requirements files pip should install (includes come along by -r)."""
    return tuple(
        m
        for m in report.manifests
        if m.endswith(".txt") and "constraint" not in Path(m).name and "dev" not in m.lower()
    )


def render_instructions(payload: CvePayload) -> str:
    """Prose a human (or an LLM that takes over) can act on, then the machine payload."""
    lines = [f"Fix the vulnerable dependencies of this repository ({payload.findings} findings)."]
    for up in payload.plan.upgrades:
        ids = ", ".join(a.id for a in up.advisories)
        lines.append(f"- upgrade {up.package} {up.from_version} -> {up.to_version} ({ids})")
    for s in payload.plan.unfixable:
        lines.append(f"- {s.package} {s.version}: no fixed release ({s.reason})")
    lines.append(
        "Apply the upgrades to the manifests, install the dependencies, run the tests "
        f"({payload.tests.command or 'no tests found'}) and check the advisories are gone. "
        "Keep the change minimal; if an upgraded API broke the code, adapt the code."
    )
    return "\n".join(lines) + f"\n\n{PAYLOAD_FENCE}\n{payload.model_dump_json()}\n```\n"


def parse_instructions(text: str) -> CvePayload:
    start = text.find(PAYLOAD_FENCE)
    if start < 0:
        raise ConfigError("not a CVE task: its instructions carry no corral-cve payload")
    body = text[start + len(PAYLOAD_FENCE) :]
    end = body.find("\n```")
    try:
        return CvePayload.model_validate(json.loads(body[: end if end >= 0 else None]))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"malformed corral-cve payload: {e}") from None
