"""`corral cve campaign` end to end through the real CLI, bwrap and the advisory snapshot."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import ROOT, Cli

SNAPSHOT = ROOT / ".." / "shared" / "data" / "pypa-advisory-db"


def test_campaign_json_report(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repos" / "svc"
    (repo / "tests").mkdir(parents=True)
    (repo / "requirements.txt").write_text("idna==3.6\n")
    (repo / "tests" / "test_idna.py").write_text(
        "import unittest\n\nimport idna\n\n\nclass T(unittest.TestCase):\n"
        "    def test_encode(self):\n        self.assertEqual(idna.encode('a.b'), b'a.b')\n"
    )
    (tmp_path / "repos" / "clean").mkdir()
    (tmp_path / "repos" / "clean" / "requirements.txt").write_text("idna==3.7\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    code, out = cli.json(
        "cve", "campaign", "--repos", str(tmp_path / "repos" / "*"), "--db", str(SNAPSHOT),
        "--offline", timeout=240,
    )  # fmt: skip
    assert code == 0, out
    by_key = {r["key"]: r for r in out["repos"]}
    assert by_key["clean"]["status"] == "clean"
    svc = by_key["svc"]
    assert svc["status"] == "fixed" and svc["tests"] == "passed"
    assert svc["branch"].startswith("corral/cve-")
    assert svc["findings"][0]["advisory"] == "PYSEC-2024-60"
    assert Path(out["files"]["markdown"]).read_text().startswith("# CVE campaign")
