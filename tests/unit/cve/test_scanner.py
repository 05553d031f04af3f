"""Scanning against the real PyPA snapshot: ids and events checked against the files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from tests.unit.cve.conftest import write

from corral.workflows.cve import OsvDatabase, ScanReport, scan_repo


def scan(root: Path, db: OsvDatabase) -> ScanReport:
    return asyncio.run(scan_repo(root, db))


def ids(report: ScanReport, package: str) -> set[str]:
    return {f.advisory for f in report.findings if f.package == package}


def test_pyyaml_531_is_hit_by_cve_2020_14343(tmp_path: Path, db: OsvDatabase) -> None:
    report = scan(write(tmp_path, {"requirements.txt": "PyYAML==5.3.1\n"}), db)
    [f] = report.findings
    assert (f.package, f.version, f.advisory) == ("pyyaml", "5.3.1", "PYSEC-2021-142")
    assert "CVE-2020-14343" in f.aliases
    assert f.fixed_in == ("5.4",)
    assert (f.file, f.line, f.pinned, f.direct) == ("requirements.txt", 1, True, True)


def test_urllib3_out_of_order_events(tmp_path: Path, db: OsvDatabase, snapshot: Path) -> None:
    raw = yaml.safe_load((snapshot / "vulns/urllib3/PYSEC-2023-192.yaml").read_text())
    [eco] = [r for r in raw["affected"][0]["ranges"] if r["type"] == "ECOSYSTEM"]
    assert eco["events"][0] == {"introduced": "2.0.0"}  # the file really is out of order
    for pin, expected in [("1.26.16", True), ("1.26.17", False), ("2.0.5", True), ("2.0.6", False)]:
        reqs = f"urllib3=={pin}\n"
        report = scan(write(tmp_path / pin, {"requirements.txt": reqs}), db)
        assert ("PYSEC-2023-192" in ids(report, "urllib3")) is expected, pin
    report = scan(write(tmp_path / "x", {"requirements.txt": "urllib3==2.0.5\n"}), db)
    [f] = [f for f in report.findings if f.advisory == "PYSEC-2023-192"]
    assert f.fixed_in == ("1.26.17", "2.0.6")
    assert f.severity is not None and f.severity.score == 8.1 and f.severity.level == "HIGH"
    assert f.severity.vector == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"


def test_py_last_affected(tmp_path: Path, db: OsvDatabase) -> None:
    report = scan(write(tmp_path, {"requirements.txt": "py==1.11.0\n"}), db)
    [f] = report.findings
    assert f.advisory == "PYSEC-2022-42969" and f.fixed_in == ()


def test_withdrawn_flask_caching_gives_no_finding(
    tmp_path: Path, db: OsvDatabase, snapshot: Path
) -> None:
    raw = yaml.safe_load((snapshot / "vulns/flask-caching/PYSEC-2021-13.yaml").read_text())
    assert raw["withdrawn"]  # it would match 1.10.1 otherwise: introduced 1.0.0, no fix
    report = scan(write(tmp_path, {"requirements.txt": "Flask_Caching==1.10.1\n"}), db)
    assert report.findings == ()
    assert db.for_package("flask-caching") == ()


def test_transitive_dependency_found_through_the_lock(tmp_path: Path, db: OsvDatabase) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "app"\ndependencies = ["requests>=2.31"]\n',
            "poetry.lock": (
                '[[package]]\nname = "requests"\nversion = "2.31.0"\n\n'
                '[[package]]\nname = "urllib3"\nversion = "2.0.4"\n'
            ),
        },
    )
    report = scan(tmp_path, db)
    urllib3 = [f for f in report.findings if f.package == "urllib3"]
    assert {f.advisory for f in urllib3} == {"PYSEC-2023-192", "PYSEC-2023-212"}
    assert all(
        (f.file, f.line, f.direct, f.source) == ("poetry.lock", 6, False, "poetry.lock")
        for f in urllib3
    )
    assert not [f for f in report.findings if f.package == "requests"]


def test_lock_wins_over_a_range(tmp_path: Path, db: OsvDatabase) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "a"\ndependencies = ["pyyaml>=5"]\n',
            "uv.lock": '[[package]]\nname = "pyyaml"\nversion = "6.0.1"\n',
        },
    )
    assert scan(tmp_path, db).findings == ()


def test_range_only_is_unpinned_with_the_vulnerable_versions_it_admits(
    tmp_path: Path, db: OsvDatabase
) -> None:
    report = scan(write(tmp_path, {"requirements.txt": "pyyaml>=5.1,<6\n"}), db)
    by_id = {f.advisory: f for f in report.findings}
    assert set(by_id) == {"PYSEC-2020-176", "PYSEC-2020-96", "PYSEC-2021-142"}
    f = by_id["PYSEC-2021-142"]
    assert not f.pinned and f.version == "<6,>=5.1"
    assert f.admits == ("5.1", "5.1.1", "5.1.2", "5.2", "5.3", "5.3.1")
    safe = scan(write(tmp_path / "safe", {"requirements.txt": "pyyaml>=5.4\n"}), db)
    assert safe.findings == ()


def test_range_without_a_versions_list_reports_intervals(tmp_path: Path) -> None:
    write(
        tmp_path / "db",
        {
            "A-1.json": json.dumps(
                {
                    "id": "A-1",
                    "affected": [
                        {
                            "package": {"ecosystem": "PyPI", "name": "demo"},
                            "ranges": [
                                {
                                    "type": "ECOSYSTEM",
                                    "events": [
                                        {"introduced": "2.0"},
                                        {"fixed": "2.0.6"},
                                        {"introduced": "0"},
                                        {"last_affected": "1.11"},
                                    ],
                                }
                            ],
                        }
                    ],
                }
            )
        },
    )
    db = OsvDatabase.open(tmp_path / "db")
    for spec, admits in [
        ("demo>0.5,<1.12", ("<=1.11",)),
        ("demo", ("<=1.11", ">=2.0,<2.0.6")),
        ("demo>=2.0.1", (">=2.0,<2.0.6",)),
        ("demo>=1.12,<2", ()),
    ]:
        report = scan(write(tmp_path / spec, {"requirements.txt": spec + "\n"}), db)
        assert tuple(a for f in report.findings for a in f.admits) == admits, spec


def test_bad_lines_are_reported_and_other_findings_still_returned(
    tmp_path: Path, db: OsvDatabase
) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "pyyaml==5.3.1\nthis is not a requirement\npy==1.11.0\n",
            "poetry.lock": "[[package]\nname = 'x'\n",
            "Pipfile.lock": '{"default": {"urllib3": {"version": "==not-a-version!"}}}',
        },
    )
    report = scan(tmp_path, db)
    assert {f.package for f in report.findings} == {"pyyaml", "py"}
    assert sorted((e.file, e.line) for e in report.errors) == [
        ("Pipfile.lock", 1),
        ("poetry.lock", 1),
        ("requirements.txt", 2),
    ]


def test_a_single_manifest_file_can_be_scanned(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"reqs.txt": "pyyaml==5.3.1\n"})
    [f] = scan(tmp_path / "reqs.txt", db).findings
    assert f.file == "reqs.txt"
