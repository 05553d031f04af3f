"""kill -9 of a running `corral cve campaign`, then the same command again: the unfinished
campaign carries on, finished repos are not redone, each repo gets one branch and one PR
(on a local fake GitHub), and the final report covers every repo."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.cve import fakepypi
from tests.integration.cve.conftest import SNAPSHOT

from corral.testing.fake_github import FakeGitHub

CORRAL = str(Path(sys.executable).parent / "corral")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
REPOS = [f"svc{i}" for i in range(4)]
SLOW_TEST = (
    "import time\nimport unittest\n\nimport idna\n\n\nclass T(unittest.TestCase):\n"
    "    def test_it(self):\n        time.sleep(2)\n        self.assertEqual(idna.__version__, '3.7')\n"
)


def _sql(db: Path, query: str) -> list[tuple[Any, ...]]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(query).fetchall()
    except sqlite3.OperationalError:
        return []


def _repos(base: Path) -> Path:
    root = base / "repos"
    for name in REPOS:
        repo = root / name
        repo.mkdir(parents=True)
        (repo / "requirements.txt").write_text("idna==3.6\n")
        (repo / "test_it.py").write_text(SLOW_TEST)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*GIT, "commit", "-qm", "init"], cwd=repo, check=True)
        remote = base / "remotes" / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
        subprocess.run(["git", "remote", "add", "origin", str(remote)], cwd=repo, check=True)
    (root / "clean").mkdir()
    (root / "clean" / "requirements.txt").write_text("idna==3.7\n")
    return root


def test_kill_9_then_the_same_command_resumes_without_redoing_finished_repos(
    tmp_path: Path,
) -> None:
    xdg = tmp_path / "xdg"  # the wheel cache: built here, nothing downloaded
    fakepypi.build(xdg / "corral" / "wheels", "idna", "3.7")
    repos = _repos(tmp_path)
    home = tmp_path / ".corral"
    db = home / "corral.db"
    argv = [CORRAL, "cve", "campaign", "--repos", str(repos / "*"), "--db", str(SNAPSHOT),
            "--offline", "--concurrency", "1", "--json", "--home", str(home)]  # fmt: skip
    with FakeGitHub(token="tok") as gh:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")} | {
            "XDG_CACHE_HOME": str(xdg), "GITHUB_TOKEN": "tok", "CORRAL_GITHUB_API": gh.url,
            "CORRAL_GITHUB_REPO": "acme/fleet",
        }  # fmt: skip
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = dict(_sql(db, "select state, count(*) from tasks group by state"))
            if states.get("succeeded", 0) >= 1 and states.get("running", 0) >= 1:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        else:
            raise AssertionError(f"the campaign never got going: {states}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = dict(_sql(db, "select key, attempts from tasks where state = 'succeeded'"))
        assert 1 <= len(done_before) < len(REPOS), done_before
        pulls_before = len(gh.pulls.get("acme/fleet", []))

        again = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
        assert "resuming unfinished campaign" in again.stderr
        report = json.loads(again.stdout)

        # The report covers every repo, the clean one included.
        by_key = {r["key"]: r for r in report["repos"]}
        assert set(by_key) == {*REPOS, "clean"} and by_key["clean"]["status"] == "clean"
        assert all(by_key[k]["status"] == "fixed" for k in REPOS), by_key
        assert [c[0] for c in _sql(db, "select count(*) from campaigns")] == [1]
        # Repos finished before the crash were not run again.
        after = dict(_sql(db, "select key, attempts from tasks"))
        assert {k: after[k] for k in done_before} == done_before
        # One branch and one PR per repo, created once each.
        pulls = gh.pulls["acme/fleet"]
        assert pulls_before == len(done_before) and len(pulls) == len(REPOS)
        assert sorted(p["head"]["ref"] for p in pulls) == sorted(by_key[k]["branch"] for k in REPOS)
        creates = [r for r in gh.requests if r == ("POST", "/repos/acme/fleet/pulls")]
        assert len(creates) == len(REPOS)
        effects = [k for (k,) in _sql(db, "select key from side_effects")]
        assert len(effects) == len(set(effects)) == len(REPOS)
        for k in REPOS:
            branches = subprocess.run(["git", "branch", "--list", "corral/*"], cwd=repos / k,
                                      capture_output=True, text=True).stdout.split()  # fmt: skip
            assert branches == [by_key[k]["branch"]]

        # --resume on the finished campaign: the same complete report, nothing run again.
        attempts = _sql(db, "select count(*) from attempts")
        explicit = subprocess.run([*argv[:3], "--resume", report["campaign"][:12], "--json",
                                   "--home", str(home)], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
        assert explicit.returncode == 0, explicit.stderr[-2000:]
        again_report = json.loads(explicit.stdout)
        assert {r["key"]: r["status"] for r in again_report["repos"]} == {
            k: r["status"] for k, r in by_key.items()
        }
        assert _sql(db, "select count(*) from attempts") == attempts
        assert len(gh.pulls["acme/fleet"]) == len(REPOS)

        # The same command once everything is done: no second campaign (that would open a
        # second PR per repo), and a one-line error that says where the first one is.
        rerun = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert rerun.returncode == 2, rerun.stderr[-2000:]
        assert rerun.stderr.strip().splitlines()[-1] == (
            f"error: campaign {report['campaign']} already ran the same upgrades on some of "
            f"these repos (one PR per repo and plan); `corral cve campaign --resume "
            f"{report['campaign']}` reports on it"
        )
        assert _sql(db, "select count(*) from campaigns") == [(1,)]
