"""OSV semantics on hand-made records: each case is a way a naive matcher goes wrong."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version

from corral.workflows.cve.osv import parse_advisory
from corral.workflows.cve.osv.cvss import cvss3_base_score, level_for
from corral.workflows.cve.osv.database import load_record


def record(*ranges: dict[str, Any], versions: list[str] | None = None, **extra: Any) -> Any:
    return {
        "id": "TEST-1",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                "ranges": list(ranges),
                "versions": versions or [],
            }
        ],
        **extra,
    }


def eco(*events: dict[str, str], kind: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"type": kind, "events": list(events)}


def hit(data: Any, version: str, package: str = "demo-pkg") -> bool:
    return parse_advisory(data).affects(package, Version(version), version)


def test_events_are_sorted_before_the_walk() -> None:
    # The 2.0 line is listed first, as in PYSEC-2023-192.
    data = record(
        eco({"introduced": "2.0.0"}, {"fixed": "2.0.6"}, {"introduced": "0"}, {"fixed": "1.26.17"})
    )
    assert hit(data, "1.26.16")
    assert not hit(data, "1.26.17")
    assert not hit(data, "1.27")
    assert hit(data, "2.0.5")  # an unsorted walk says "fixed by 1.26.17" here
    assert not hit(data, "2.0.6")


def test_last_affected_is_inclusive_and_fixed_is_exclusive() -> None:
    data = record(eco({"introduced": "1.0"}, {"last_affected": "1.4"}))
    assert [hit(data, v) for v in ("0.9", "1.0", "1.4", "1.4.1")] == [False, True, True, False]
    fixed = record(eco({"introduced": "1.0"}, {"fixed": "1.4"}))
    assert [hit(fixed, v) for v in ("1.3.9", "1.4")] == [True, False]


def test_limit_caps_the_range() -> None:
    data = record(eco({"introduced": "0"}, {"limit": "2.0"}))
    assert hit(data, "1.9")
    assert not hit(data, "2.0")


def test_explicit_versions_list_counts_even_outside_ranges() -> None:
    data = record(eco({"introduced": "3.0"}, {"fixed": "3.1"}), versions=["1.5", "2.0.0"])
    assert hit(data, "1.5")
    assert hit(data, "2.0")  # PEP 440: 2.0 == 2.0.0
    assert not hit(data, "1.6")


def test_git_ranges_never_count_as_versions() -> None:
    data = record(
        {
            "type": "GIT",
            "repo": "https://x",
            "events": [{"introduced": "0"}, {"fixed": "2f2e3b1c0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"}],
        }
    )
    adv = parse_advisory(data)
    assert not adv.affects("demo-pkg", Version("1.0"), "1.0")
    assert adv.fixed_in("demo-pkg") == ()


def test_prerelease_ordering_follows_pep440() -> None:
    data = record(eco({"introduced": "5.1"}, {"fixed": "5.2b1"}))
    assert hit(data, "5.1.2")
    assert hit(data, "5.2a1")
    assert not hit(data, "5.2b1")
    assert not hit(data, "5.2")


def test_semver_ranges_use_semver_precedence() -> None:
    data = record(eco({"introduced": "1.0.0-alpha"}, {"fixed": "1.0.0"}, kind="SEMVER"))
    assert hit(data, "1.0.0-beta.2")
    assert not hit(data, "1.0.0")


def test_names_are_pep503_normalised() -> None:
    data = record(eco({"introduced": "0"}))
    assert parse_advisory(data).packages() == {"demo-pkg"}


def test_other_ecosystems_and_bad_versions_are_dropped_not_fatal() -> None:
    data = record(eco({"introduced": "0"}, {"fixed": "not a version"}), versions=["x.y"])
    data["affected"].append({"package": {"ecosystem": "npm", "name": "demo-pkg"}})
    adv = parse_advisory(data)
    assert len(adv.affected) == 1
    assert len(adv.warnings) == 1  # unparseable `versions` entries are skipped when used
    assert adv.affects("demo-pkg", Version("9"), "9")


def test_withdrawn_flag_is_read() -> None:
    assert parse_advisory(record(withdrawn="2023-07-25T12:32:00Z")).withdrawn


def test_yaml_numbers_stay_strings() -> None:
    data = load_record(
        "x.yaml",
        "id: T\naffected:\n- package: {ecosystem: PyPI, name: a}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n"
        "    - fixed: 1.10\n",
    )
    adv = parse_advisory(data)
    assert adv.fixed_in("a") == ("1.10",)
    assert adv.affects("a", Version("1.9"), "1.9")


@pytest.mark.parametrize(
    ("vector", "score", "level"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N", 8.1, "HIGH"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"),
        ("CVSS:3.1/AV:A/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.2, "MEDIUM"),
    ],
)
def test_cvss3_base_score(vector: str, score: float, level: str) -> None:
    got = cvss3_base_score(vector)
    assert got == score
    assert level_for(got) == level


def test_severity_from_database_specific_when_no_vector() -> None:
    adv = parse_advisory(record(database_specific={"severity": "moderate"}))
    assert adv.severity is not None and adv.severity.level == "MODERATE"
    assert cvss3_base_score("CVSS:4.0/AV:N") is None
