"""A real campaign on real advisories: bwrap sandboxes, wheels from PyPI (cached under
~/.cache/corral/wheels, so reruns download nothing), PRs on a local fake GitHub."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.testing.fake_github import FakeGitHub
from corral.workflows.cve import open_source
from corral.workflows.cve.campaign import CampaignOptions, RepoEntry, triage
from corral.workflows.cve.deliver import deliver_pr, final_reason
from corral.workflows.cve.outcome import run_cve_campaign

from .conftest import SNAPSHOT

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
TEST = "import unittest\n\nimport {mod}\n\n\nclass T(unittest.TestCase):\n    def test_it(self):\n        {body}\n"
LOCK = '[[package]]\nname = "urllib3"\nversion = "1.26.4"\noptional = false\n'
REPOS = {
    "ok": {"requirements.txt": "idna==3.6\n",
           "test_ok.py": TEST.format(mod="idna", body='self.assertEqual(idna.encode("a.b"), b"a.b")')},
    "breaks": {"requirements.txt": "tqdm==4.11.1\n",
               "test_v.py": TEST.format(mod="tqdm", body='self.assertEqual(tqdm.__version__, "4.11.1")')},
    "locked": {"poetry.lock": LOCK,
               "test_u.py": TEST.format(mod="urllib3", body="self.assertTrue(urllib3.__version__)")},
}  # fmt: skip


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("cve-campaign")
    remote = base / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    for name, files in REPOS.items():
        root = base / name
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "init")
        if name == "ok":
            _git(root, "remote", "add", "origin", str(remote))
    with FakeGitHub(token="tok") as gh, pytest.MonkeyPatch.context() as mp:
        # Only the "ok" repo has a remote; the others leave a local branch + PR.md.
        mp.setenv("GITHUB_TOKEN", "tok")
        mp.setenv("CORRAL_GITHUB_API", gh.url)
        mp.setenv("CORRAL_GITHUB_REPO", "acme/ok")
        result = asyncio.run(_run(base, gh))
    result["base"] = base
    result["gh"] = gh
    return result


async def _run(base: Path, gh: FakeGitHub) -> dict[str, Any]:
    opts = CampaignOptions(db=(str(SNAPSHOT),), concurrency=2, use_index=False)
    source = open_source([str(SNAPSHOT)])
    triaged = await triage([RepoEntry(base / n) for n in REPOS], source, opts)
    home = base / "home"
    store = await Store.open(None, home=home)
    try:
        settings = WorkerSettings(home=home, concurrency=2, zombie_after_s=300)
        report = await run_cve_campaign(store, triaged, opts, settings)
        # A retry after a crash between "PR opened" and "recorded" runs the delivery again.
        ok = next(r for r in report["repos"] if r["key"] == "ok")
        task = await store.get_task(ok["task"])
        attempts = await store.attempts_of(task.id)
        patches = sorted((base / "ok" / ".corral").glob("*.patch"))
        # Say why, if the repo that should be fixed was not (a flake seen once under load).
        assert ok["status"] == "fixed" and patches, (ok, [a["reason"] for a in attempts])
        again = await deliver_pr(store, task, attempts[-1]["id"], patches[0].read_text(), home)
        reason = await final_reason(store, attempts[-1]["id"])
        reviews = await store.reviews()
    finally:
        await store.close()
    return {"report": report, "again": again, "reason": reason, "reviews": reviews}


def _repo(outcome: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in outcome["report"]["repos"] if r["key"] == key)


def test_successful_bump_opens_exactly_one_pr_even_after_a_retry(outcome: dict[str, Any]) -> None:
    ok = _repo(outcome, "ok")
    assert ok["status"] == "fixed" and ok["tests"] == "passed"
    assert ok["fixed"] == [["idna", "PYSEC-2024-60"]]
    gh: FakeGitHub = outcome["gh"]
    pulls = gh.open_pulls("acme/ok")
    assert len(pulls) == 1 and ok["pr"]["number"] == pulls[0]["number"]
    assert outcome["again"]["pr"]["action"] == "updated"
    assert "| idna | 3.6 → **3.7** |" in pulls[0]["body"] and "CVE-2024-3651" in pulls[0]["body"]
    assert "Tests: **passed**" in pulls[0]["body"]
    assert pulls[0]["head"]["ref"] == ok["branch"] and pulls[0]["base"]["ref"] == "main"
    out = subprocess.run(["git", "log", "--format=%s", ok["branch"]], cwd=outcome["base"] / "ok",
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.splitlines()[0].startswith("Security: upgrade idna")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=outcome["base"] / "ok",
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert status == ""  # the user's checkout is untouched; .corral/ is ignored


def test_a_bump_that_breaks_the_tests_lands_in_review_not_in_a_pr(
    outcome: dict[str, Any],
) -> None:
    broken = _repo(outcome, "breaks")
    assert broken["status"] == "needs review" and broken["pr"] is None and not broken["branch"]
    assert "tests fail after the upgrade" in broken["reason"]
    review = next(r for r in outcome["reviews"] if r.task_id == broken["task"])
    assert "tqdm==4.11.2" in review.diff


def test_transitive_dependency_through_a_lock_is_fixed_and_reported(
    outcome: dict[str, Any],
) -> None:
    locked = _repo(outcome, "locked")
    assert locked["findings"][0]["source"] == "poetry.lock"
    assert locked["status"] == "fixed" and locked["tests"] == "passed"
    assert {p for p, _ in locked["fixed"]} == {"urllib3"}
    assert "refresh their hashes" in Path(locked["pr_md"]).read_text()


def test_report_shape(outcome: dict[str, Any]) -> None:
    report = outcome["report"]
    assert set(report) >= {"campaign", "state", "counts", "repos", "files"}
    assert report["counts"] == {"fixed": 2, "needs review": 1}
    for r in report["repos"]:
        assert set(r) >= {"repo", "key", "findings", "planned", "fixed", "not_fixed", "pr",
                          "branch", "tests", "status", "task"}  # fmt: skip
        for f in r["findings"]:
            assert {"package", "version", "advisory", "aliases", "fixed_in", "file", "line"} <= set(
                f
            )
    assert Path(report["files"]["json"]).is_file() and Path(report["files"]["markdown"]).is_file()
