"""`corral cve scan` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.cve.conftest import SNAPSHOT

CORRAL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "corral"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CORRAL_OSV_DB"}
    return subprocess.run(
        [str(CORRAL), "cve", "scan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=base | (env or {}),
    )


def repo(tmp_path: Path) -> Path:
    (tmp_path / "requirements.txt").write_text("pyyaml==5.3.1\nnot a requirement at all\n")
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "urllib3"\nversion = "2.0.5"\n')
    return tmp_path


def test_json_shape(tmp_path: Path) -> None:
    r = run(str(repo(tmp_path)), "--db", str(SNAPSHOT), "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    by_id = {f["advisory"]: f for f in doc["findings"]}
    assert set(by_id) == {"PYSEC-2021-142", "PYSEC-2023-192", "PYSEC-2023-212"}
    f = by_id["PYSEC-2023-192"]
    assert {"package", "version", "advisory", "aliases", "fixed_in", "file", "line"} <= set(f)
    assert (f["package"], f["version"], f["file"], f["line"]) == (
        "urllib3",
        "2.0.5",
        "poetry.lock",
        2,
    )
    assert f["fixed_in"] == ["1.26.17", "2.0.6"] and "CVE-2023-43804" in f["aliases"]
    assert f["severity"]["vector"].startswith("CVSS:3.1/") and f["severity"]["level"] == "HIGH"
    assert "severity" not in by_id["PYSEC-2021-142"]  # unknown: omitted, not invented
    assert doc["errors"] == [
        {"file": "requirements.txt", "line": 2, "message": doc["errors"][0]["message"]}
    ]


def test_plan_in_json_and_env_default(tmp_path: Path) -> None:
    r = run(str(repo(tmp_path)), "--json", "--plan", env={"CORRAL_OSV_DB": str(SNAPSHOT)})
    plan = json.loads(r.stdout)["plan"]
    got = {(u["package"], u["from_version"], u["to_version"]) for u in plan["upgrades"]}
    assert got == {("pyyaml", "5.3.1", "5.4"), ("urllib3", "2.0.5", "2.0.7")}


def test_human_table(tmp_path: Path) -> None:
    r = run(str(repo(tmp_path)), "--db", str(SNAPSHOT))
    assert r.returncode == 1
    assert "PYSEC-2021-142" in r.stdout and "requirements.txt:1" in r.stdout
    assert "error: requirements.txt:2:" in r.stdout


def test_clean_repo_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pyyaml==6.0.1\n")
    r = run(str(tmp_path), "--db", str(SNAPSHOT), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["findings"] == []


def test_missing_db_is_one_clear_line(tmp_path: Path) -> None:
    r = run(str(repo(tmp_path)))
    assert r.returncode == 2
    assert r.stderr.strip() == "error: no advisory database: pass --db DIR (or set CORRAL_OSV_DB)"
    r = run(str(tmp_path), "--db", str(tmp_path / "nope"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
