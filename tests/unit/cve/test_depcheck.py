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
    venv, system = tmp_path / "venv", tmp_path / "system"
    _dist(venv, "idna", "3.7")
    _dist(venv, "httpkit", "1.0", "idna<3.7,>=2.5", "Six>=2; extra == 'compat'")
    _dist(venv, "oldlib", "2.0", "charset_normalizer<3")  # the repo's own, older problem
    _dist(venv, "charset-normalizer", "3.3.2")
    _dist(venv, "tool", "1.0", "missing-dep>=1")  # not installed at all: not ours
    _dist(system, "idna", "2.0")  # shadowed by the venv's
    path = [str(venv), str(system)]
    assert conflicts(str(venv), {"IDNA"}, path) == [
        "httpkit 1.0 requires idna<3.7,>=2.5, but idna 3.7 is installed"
    ]
    assert conflicts(str(venv), {"six"}, path) == []  # only through an extra nobody asked for
    assert conflicts(str(venv), {"httpkit"}, path) == [  # the requirer upgraded this time
        "httpkit 1.0 requires idna<3.7,>=2.5, but idna 3.7 is installed"
    ]


def test_markers_for_another_python_are_skipped(tmp_path: Path) -> None:
    _dist(tmp_path, "idna", "3.7")
    _dist(tmp_path, "legacy", "1.0", 'idna<3; python_version < "3.0"', "idna>=3")
    assert conflicts(str(tmp_path), {"idna"}, [str(tmp_path)]) == []
