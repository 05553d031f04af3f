"""Fix planning on the real snapshot, with and without a package index."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.unit.cve.conftest import write

from corral.workflows.cve import (
    FixPlan,
    OsvDatabase,
    PackageIndex,
    StaticIndex,
    plan_fixes,
    scan_repo,
    severity_order,
)


def plan(root: Path, db: OsvDatabase, index: PackageIndex | None = None) -> FixPlan:
    async def go() -> FixPlan:
        return await plan_fixes(await scan_repo(root, db), db, index)

    return asyncio.run(go())


def targets(p: FixPlan) -> dict[tuple[str, str], str]:
    return {(u.package, u.from_version): u.to_version for u in p.upgrades}


def test_pyyaml_531_to_54(tmp_path: Path, db: OsvDatabase) -> None:
    p = plan(write(tmp_path, {"requirements.txt": "pyyaml==5.3.1\n"}), db)
    [u] = p.upgrades
    assert (u.package, u.from_version, u.to_version) == ("pyyaml", "5.3.1", "5.4")
    [a] = u.advisories
    assert a.id == "PYSEC-2021-142" and "CVE-2020-14343" in a.aliases
    assert [(loc.file, loc.line) for loc in u.locations] == [("requirements.txt", 1)]
    assert p.unfixable == () and not u.verified_by_index


def test_urllib3_stays_on_its_line(tmp_path: Path, db: OsvDatabase) -> None:
    write(
        tmp_path,
        {"requirements.txt": "urllib3==1.26.5\n", "sub/requirements.txt": "urllib3==2.0.4\n"},
    )
    got = targets(plan(tmp_path, db))
    # 1.26.17/2.0.6 fix PYSEC-2023-192; PYSEC-2023-212 needs 1.26.18/2.0.7 too.
    assert got == {("urllib3", "1.26.5"): "1.26.18", ("urllib3", "2.0.4"): "2.0.7"}


def test_urllib3_with_an_index_takes_the_lowest_safe_release(
    tmp_path: Path, db: OsvDatabase
) -> None:
    index = StaticIndex(
        {"urllib3": ["1.26.17", "1.26.18!yanked", "1.26.19", "2.0.6", "2.0.7", "2.1.0"]}
    )
    write(
        tmp_path,
        {"requirements.txt": "urllib3==1.26.5\n", "b/requirements.txt": "urllib3==2.0.5\n"},
    )
    p = plan(tmp_path, db, index)
    assert targets(p) == {("urllib3", "1.26.5"): "1.26.19", ("urllib3", "2.0.5"): "2.0.7"}
    assert all(u.verified_by_index and u.same_major for u in p.upgrades)
    assert p.index_used


def test_prerelease_fix_is_not_the_target(tmp_path: Path, db: OsvDatabase, snapshot: Path) -> None:
    # Whole snapshot: 5.1 is hit by PYSEC-2020-176 (fixed 5.2b1) and others; 5.4 fixes all.
    p = plan(write(tmp_path / "all", {"requirements.txt": "pyyaml==5.1\n"}), db)
    [u] = p.upgrades
    assert u.to_version == "5.4"
    assert "PYSEC-2020-176" in {a.id for a in u.advisories}
    # Only PYSEC-2020-176: its one fix is the pre-release 5.2b1.
    one = tmp_path / "db"
    one.mkdir()
    shutil.copy(snapshot / "vulns/pyyaml/PYSEC-2020-176.yaml", one)
    only = OsvDatabase.open(one)
    repo = write(tmp_path / "repo", {"requirements.txt": "pyyaml==5.1\n"})
    offline = plan(repo, only)
    [u] = offline.upgrades
    assert u.to_version == "5.2" and u.note and "pre-release" in u.note
    index = StaticIndex({"pyyaml": ["5.1", "5.1.1", "5.1.2", "5.2b1", "5.2", "5.3"]})
    [u] = plan(repo, only, index).upgrades
    assert (u.to_version, u.note, u.verified_by_index) == ("5.2", None, True)


def test_py_has_no_fix_and_is_reported_with_options(tmp_path: Path, db: OsvDatabase) -> None:
    p = plan(write(tmp_path, {"requirements.txt": "py==1.11.0\n"}), db)
    assert p.upgrades == ()
    [s] = p.unfixable
    assert (s.package, s.version) == ("py", "1.11.0")
    assert [a.id for a in s.advisories] == ["PYSEC-2022-42969"]
    assert set(s.options) == {"remove", "replace", "accept"}
    assert "1.11.0" in s.reason
    # Even with an index that knows releases, nothing after 1.11.0 exists.
    p2 = plan(tmp_path, db, StaticIndex({"py": ["1.9.0", "1.10.0", "1.11.0"]}))
    assert p2.upgrades == () and len(p2.unfixable) == 1


def test_partly_fixable_upgrades_and_lists_the_rest(tmp_path: Path, db: OsvDatabase) -> None:
    p = plan(write(tmp_path, {"requirements.txt": "py==1.9.0\n"}), db)
    [u] = p.upgrades
    assert (u.to_version, [a.id for a in u.advisories]) == ("1.10.0", ["PYSEC-2020-92"])
    [s] = p.unfixable
    assert [a.id for a in s.advisories] == ["PYSEC-2022-42969"]


def test_yanked_and_prereleases_from_the_index_are_skipped(tmp_path: Path, db: OsvDatabase) -> None:
    index = StaticIndex({"pyyaml": ["5.3.1", "5.4b1", "5.4!yanked", "5.4.1", "6.0"]})
    p = plan(write(tmp_path, {"requirements.txt": "pyyaml==5.3.1\n"}), db, index)
    assert targets(p) == {("pyyaml", "5.3.1"): "5.4.1"}


def test_unknown_package_on_the_index_falls_back_to_advisories(
    tmp_path: Path, db: OsvDatabase
) -> None:
    p = plan(write(tmp_path, {"requirements.txt": "pyyaml==5.3.1\n"}), db, StaticIndex({}))
    assert targets(p) == {("pyyaml", "5.3.1"): "5.4"}
    assert any("no answer for pyyaml" in n for n in p.notes)


def test_unpinned_range_plans_a_new_lower_bound(tmp_path: Path, db: OsvDatabase) -> None:
    p = plan(write(tmp_path, {"requirements.txt": "pyyaml>=5.1,<6\n"}), db)
    [u] = p.upgrades
    assert (u.kind, u.from_version, u.to_version) == ("range", "<6,>=5.1", "5.4")


def test_plans_are_severity_ordered_and_serialisable(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"requirements.txt": "pyyaml==5.3.1\nurllib3==2.0.4\n"})
    p = plan(tmp_path, db)
    assert [u.package for u in severity_order(p)] == ["urllib3", "pyyaml"]
    assert FixPlan.model_validate_json(p.model_dump_json()) == p


def test_nothing_vulnerable_gives_an_empty_plan(tmp_path: Path, db: OsvDatabase) -> None:
    assert plan(write(tmp_path, {"requirements.txt": "pyyaml==6.0.1\n"}), db).empty
