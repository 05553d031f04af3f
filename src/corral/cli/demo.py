"""The bundled demo: a CVE campaign over a dozen generated repos with real vulnerable pins.

The repos come from `examples/cve/repos.json` (small unittest suites that pass after the
upgrade; one breaks on purpose and ends in review). Advisories are read in place from
$CORRAL_OSV_DB or ../shared/data/pypa-advisory-db next to the project; never copied in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from corral.domain import ConfigError

DEMO_TASK = "The discount tests fail. Find the bug in the pricing code and fix it."
_GIT = ["git", "-c", "user.name=corral demo", "-c", "user.email=demo@localhost",
        "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]  # fmt: skip


def _examples() -> Path:
    return Path(__file__).resolve().parent.parent / "examples"


def prepare_demo(home: Path) -> tuple[Path, Path, str]:
    """The single-agent sample repo (a fresh copy under HOME/demo), for `corral run` docs."""
    src = _examples() / "demo"
    dest = home / "demo" / "repo"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src / "repo", dest)
    return dest.resolve(), (src / "agent.yaml").resolve(), DEMO_TASK


def advisory_db() -> Path:
    """$CORRAL_OSV_DB, else the shared snapshot beside the project (or the cwd)."""
    env = os.environ.get("CORRAL_OSV_DB")
    if env:
        return Path(env)
    project = Path(__file__).resolve().parents[3]
    for base in (project, Path.cwd()):
        cand = base / ".." / "shared" / "data" / "pypa-advisory-db"
        if cand.is_dir():
            return cand.resolve()
    raise ConfigError(
        "no advisory database for the demo: set CORRAL_OSV_DB to an OSV directory "
        "(e.g. a checkout of github.com/pypa/advisory-database/vulns)"
    )


def fresh_run_dir(runs: Path) -> Path:
    """A new folder for this demo run's repos; earlier runs' repos are removed.

    Each run needs repos at new paths: a campaign never redoes an upgrade it already made
    on a repo (one PR per repo and plan), and the demo regenerates the same plan.
    """
    if runs.exists():
        for old in runs.iterdir():
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
    runs.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=runs))


def generate_repos(dest: Path) -> list[Path]:
    """Write each sample repo under DEST as a git repo with one commit."""
    spec = json.loads((_examples() / "cve" / "repos.json").read_text())
    if dest.exists():
        shutil.rmtree(dest)
    out: list[Path] = []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}  # fmt: skip
    for repo in spec["repos"]:
        root = dest / repo["name"]
        for rel, text in repo["files"].items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / "README.md").write_text(f"# {repo['name']}\n\n{repo['about']}\n")
        for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
            subprocess.run([*_GIT, *argv], cwd=root, env=env, check=True, capture_output=True)
        out.append(root)
    return out
