"""Verification the playbook runs: the shell commands, and reading their output back.

Install and tests run inside the sandbox. The re-scan is split: the sandbox reports what
it actually installed (pip's own list) and the manifests as they now are; the host, which
holds the advisory database, re-scans those with the real scanner. So the check needs no
corral inside the sandbox and no advisory data copied into the workspace.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from corral.workflows.cve.manifests import repo_file
from corral.workflows.cve.osv import AdvisorySource
from corral.workflows.cve.scanner import scan_repo
from corral.workflows.cve.tasks import CvePayload
from corral.workflows.cve.wheels import CORRAL_DIR, WHEELS_DIR
from corral.workflows.playbooks import EXIT_TAIL, exit_code

VENV = "/tmp/corral-venv"
FILE_MARK = "--- corral-file: "
INSTALLED_MARK = "corral-installed: "
LOCKREQS = f"{CORRAL_DIR}/lockreqs.py"
DEPCHECK = f"{CORRAL_DIR}/depcheck.py"
TestVerdict = Literal["passed", "failed", "no tests found"]


def install_command(p: CvePayload) -> str:
    """A venv in /tmp (never in the diff), then pip from the wheelhouse or the index.

    Files whose hashes the bump rewrote are installed first in pip's hash-checking mode
    (a lock's entries through `lockreqs.py`), so a wrong hash fails here, in the sandbox,
    rather than in the user's CI after the PR.
    """
    reqs = p.requirement_files or (p.pins_file,)
    files = " ".join(f"-r {shlex.quote(r)}" for r in reqs)
    pip = f"{VENV}/bin/python -m pip install -q"
    local = "" if p.install == "index" else f" --no-index --find-links {WHEELS_DIR}"
    # --ignore-installed: a package the system already has must still be checked.
    checked = f"{pip}{local} --no-deps --ignore-installed --require-hashes"
    steps = [
        "export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1; "
        f"rm -rf {VENV} && python3 -m venv --system-site-packages --without-pip {VENV}"
    ]
    by_lock: dict[str, list[str]] = {}
    for lock, package in p.hash_checks:
        by_lock.setdefault(lock, []).append(package)
    for n, (lock, packages) in enumerate(sorted(by_lock.items())):
        out = f"/tmp/corral-locked-{n}.txt"
        names = " ".join(shlex.quote(x) for x in sorted(set(packages)))
        steps.append(f"{VENV}/bin/python {LOCKREQS} {shlex.quote(lock)} {names} > {out}")
        steps.append(f"{checked} -r {out}")
    if p.hashed_requirements:
        hashed = " ".join(f"-r {shlex.quote(r)}" for r in p.hashed_requirements)
        steps.append(f"{checked} {hashed}")
    if p.install == "index":
        steps.append(f"{pip} {files}")
    else:
        # The wheel files themselves (no index at all), then the manifests against what is
        # installed: a pin the wheelhouse lacks fails here instead of passing unnoticed.
        # --ignore-installed: every pin in the venv, even one the system has at that
        # version, so the tests and the requirement check see the repo's own set.
        steps.append(f"{pip} --no-index --no-deps --ignore-installed {WHEELS_DIR}/*.whl")
        steps.append(f"{pip} --no-index --no-deps {files}")
        # --no-deps installs a bump past what another pin accepts: say so, as pip would.
        upgraded = " ".join(sorted({shlex.quote(u.package) for u in p.plan.upgrades}))
        if upgraded:  # (a task planned before the check existed has no script)
            steps.append(f"{{ [ ! -f {DEPCHECK} ] || {VENV}/bin/python {DEPCHECK} {upgraded}; }}")
    return " && ".join(steps) + EXIT_TAIL


def test_command(p: CvePayload) -> str:
    env = f'export PATH={VENV}/bin:$PATH; [ -d src ] && export PYTHONPATH="$PWD/src"; '
    return f"{env}{p.tests.command} 2>&1" + EXIT_TAIL


def rescan_command(p: CvePayload, files: Iterable[str]) -> str:
    """pip's list of what is installed, then each manifest as it now reads."""
    parts = [
        f"{VENV}/bin/python -m pip list --local --format=json 2>/dev/null "
        f"| sed 's/^/{INSTALLED_MARK}/'"
    ]
    for f in files:
        q = shlex.quote(f)
        parts.append(f"echo {shlex.quote(FILE_MARK + f)}; cat -- {q}")
    return "; ".join(parts)


def test_verdict(p: CvePayload, output: str) -> TestVerdict:
    code = exit_code(output)
    if p.tests.kind == "none":
        return "no tests found"
    if (p.tests.kind == "pytest" and code == 5) or re.search(r"(?m)^Ran 0 tests", output):
        return "no tests found"
    if p.tests.kind == "pytest" and re.search(r"no tests ran", output):
        return "no tests found"
    return "passed" if code == 0 else "failed"


@dataclass
class Rescan:
    """What is still vulnerable after the change, and what the change introduced."""

    remaining: list[tuple[str, str]] = field(default_factory=list)  # targets still present
    added: list[tuple[str, str]] = field(default_factory=list)  # new (package, advisory)
    installed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining and not self.added


def parse_rescan(output: str) -> tuple[dict[str, str], dict[str, str]]:
    """(installed name -> version, file -> content) from the rescan command's output."""
    installed: dict[str, str] = {}
    files: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    for line in output.splitlines(keepends=True):
        if line.startswith(INSTALLED_MARK):
            try:
                rows = json.loads(line[len(INSTALLED_MARK) :])
                installed = {canonicalize_name(r["name"]): str(r["version"]) for r in rows}
            except (ValueError, KeyError, TypeError):
                pass
            continue
        if line.startswith(FILE_MARK):
            if current is not None:
                files[current] = "".join(buf)
            current, buf = line[len(FILE_MARK) :].rstrip("\n"), []
            continue
        if current is not None:
            buf.append(line)
    if current is not None:
        files[current] = "".join(buf)
    return installed, files


async def rescan(
    p: CvePayload,
    source: AdvisorySource,
    output: str,
    *,
    truncated: bool,
    fallback: Mapping[str, str],
) -> Rescan:
    """Re-scan the workspace's manifests (as the sandbox printed them) plus the installed
    set; `fallback` holds the manifests rebuilt from our exact edits if output was cut."""
    installed, files = parse_rescan(output)
    out = Rescan(installed=installed)
    if truncated or not files:
        files = dict(fallback)
        out.notes.append("manifests re-scanned from the applied edits (sandbox output was cut)")
    found: set[tuple[str, str]] = set()
    tmp = Path(tempfile.mkdtemp(prefix="corral-rescan-"))
    try:
        repo = Path(p.repo)
        for rel in p.manifests:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel in files:
                dest.write_text(files[rel])
            elif repo_file(repo / rel, repo):
                shutil.copyfile(repo / rel, dest)
        report = await scan_repo(tmp, source)
        found |= {(f.package, f.advisory) for f in report.findings}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if installed:
        advisories = await source.advisories(list(installed))
        for name, ver in installed.items():
            try:
                v = Version(ver)
            except InvalidVersion:
                continue
            found |= {(name, a.id) for a in advisories.get(name, ()) if a.affects(name, v, ver)}
    elif p.install == "wheelhouse":
        out.notes.append("pip reported no installed packages; only manifests were re-scanned")
    known = set(p.known)
    out.remaining = sorted(t for t in p.targets if t in found)
    out.added = sorted(f for f in found if f not in known)
    return out


def apply_edits(p: CvePayload, done: Iterable[int]) -> dict[str, str]:
    """The edited manifests rebuilt on the host from the original files plus our edits."""
    texts: dict[str, str] = {}
    for i in done:
        e = p.edits[i]
        if e.file not in texts:
            try:
                texts[e.file] = (Path(p.repo) / e.file).read_text()
            except OSError:
                continue
        texts[e.file] = texts[e.file].replace(e.old, e.new, 1)
    return texts
