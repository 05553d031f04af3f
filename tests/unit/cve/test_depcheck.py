"""The venv check that stands in for pip's resolver, which `--no-deps` installs skip."""

from __future__ import annotations

from pathlib import Path

from corral.workflows.cve.depcheck import conflicts


def _dist(site: Path, name: str, version: str, *requires: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_a_bump_past_what_another_pin_accepts_is_a_conflict(tmp_path: Path) -> None:
    _dist(tmp_path, "idna", "3.7")
    _dist(tmp_path, "httpkit", "1.0", "idna<3.7,>=2.5", "Six>=2; extra == 'compat'")
    _dist(tmp_path, "oldlib", "2.0", "charset_normalizer<3")  # the repo's own, older problem
    _dist(tmp_path, "charset-normalizer", "3.3.2")
    _dist(tmp_path, "tool", "1.0", "missing-dep>=1")  # not in the venv at all: not ours
    site = [str(tmp_path)]
    clash = "httpkit 1.0 requires idna<3.7,>=2.5, but idna 3.7 is installed"
    assert conflicts(site, {"IDNA"}) == [clash]
    assert conflicts(site, {"httpkit"}) == [clash]  # the requirer upgraded this time
    assert conflicts(site, {"six"}) == []  # only through an extra nobody asked for


def test_the_systems_packages_are_not_the_repos(tmp_path: Path) -> None:
    """A requirement on something the repo does not pin was checked against the host's
    copy (pip would fetch a newer one): a false conflict that depended on the host."""
    venv, system = tmp_path / "venv", tmp_path / "system"
    _dist(venv, "foo", "2.0", "pyparsing>=3.1")
    _dist(system, "pyparsing", "3.0.9")
    assert conflicts([str(venv)], {"foo"}) == []


def test_markers_for_another_python_and_odd_versions_are_skipped(tmp_path: Path) -> None:
    _dist(tmp_path, "idna", "3.7")
    _dist(tmp_path, "legacy", "1.0", 'idna<3; python_version < "3.0"', "idna>=3")
    _dist(tmp_path, "distro-built", "1.0ubuntu1", "idna>=3")
    _dist(tmp_path, "needs-odd", "1.0", "distro-built>=1")
    assert conflicts([str(tmp_path)], {"idna", "distro-built"}) == []
