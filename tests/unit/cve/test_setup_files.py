"""Pipfile and setup.cfg as manifests: ranges reported as unpinned, a lock wins over them,
and a range is raised in place without breaking the file."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from corral.workflows.cve import OsvDatabase, plan_fixes, scan_repo
from corral.workflows.cve.edits import build_edits
from corral.workflows.cve.manifests import read_repo

from .conftest import write

PIPFILE = """[[source]]
url = "https://pypi.org/simple"
name = "pypi"

[packages]
pyyaml = ">=5.1,<6"
requests = {version = "==2.19.0", extras = ["socks"]}
idna = "*"
mylib = {path = ".", editable = true}
colorama = {version = "*", markers = "sys_platform == 'win32'"}

[dev-packages]
"urllib3" = "==1.26.4"

[requires]
python_version = "3.11"
"""

SETUP_CFG = """[metadata]
name = svc

[options]
packages = find:
install_requires =
    pyyaml>=5.1,<6  # yaml
    requests[socks]==2.19.0; python_version >= "3"
    zed @ https://example.invalid/zed-1.0.tar.gz
    not a requirement ===
python_requires = >=3.8

[options.extras_require]
http = urllib3==1.26.4
docs =
    sphinx

[options.entry_points]
console_scripts =
    svc = svc:main
"""


def _declared(root: Path) -> dict[str, tuple[str | None, str, int, str | None]]:
    return {d.name: (d.version, d.spec_text, d.line, d.markers) for d in read_repo(root).declared}


def test_pipfile_packages_and_dev_packages(tmp_path: Path) -> None:
    got = _declared(write(tmp_path, {"Pipfile": PIPFILE}))
    assert got["pyyaml"] == (None, "<6,>=5.1", 6, None)
    assert got["requests"] == ("2.19.0", "==2.19.0", 7, None)
    assert got["idna"] == (None, "*", 8, None)
    assert got["colorama"][3] == "sys_platform == 'win32'"
    assert got["urllib3"] == ("1.26.4", "==1.26.4", 13, None)
    result = read_repo(tmp_path)
    assert [(i.kind, i.line) for i in result.issues] == [("skipped", 9)]
    assert "mylib" not in got and "python-version" not in got


def test_setup_cfg_install_requires_and_extras(tmp_path: Path) -> None:
    got = _declared(write(tmp_path, {"setup.cfg": SETUP_CFG}))
    assert got == {
        "pyyaml": (None, "<6,>=5.1", 7, None),
        "requests": ("2.19.0", "==2.19.0", 8, 'python_version >= "3"'),
        "urllib3": ("1.26.4", "==1.26.4", 14, None),
        "sphinx": (None, "*", 16, None),
    }
    issues = [(i.kind, i.line) for i in read_repo(tmp_path).issues]
    assert issues == [("skipped", 9), ("error", 10)]


def test_ranges_are_unpinned_findings_and_a_lock_wins(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path / "a", {"Pipfile": PIPFILE})
    report = asyncio.run(scan_repo(tmp_path / "a", db))
    yaml = [f for f in report.findings if f.package == "pyyaml"]
    assert yaml and not yaml[0].pinned and yaml[0].source == "Pipfile" and yaml[0].admits
    pinned = [f for f in report.findings if f.package == "urllib3"]
    assert pinned and pinned[0].pinned
    write(tmp_path / "b", {"setup.cfg": "[options]\ninstall_requires = pyyaml>=5\n",
                           "poetry.lock": '[[package]]\nname = "pyyaml"\nversion = "6.0.1"\n'})  # fmt: skip
    assert asyncio.run(scan_repo(tmp_path / "b", db)).findings == ()


def test_ranges_in_toml_tables_are_raised_without_breaking_the_file(
    tmp_path: Path, db: OsvDatabase
) -> None:
    files = {
        "Pipfile": '[packages]\npyyaml = ">=5.1,<6"\nidna = "*"\n',
        "pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nurllib3 = {version = "^1.26", '
        'extras = ["socks"]}\n',
    }
    write(tmp_path, files)
    plan = asyncio.run(plan_fixes(asyncio.run(scan_repo(tmp_path, db)), db))
    made = build_edits(tmp_path, plan)
    assert not made.problems
    texts = dict(files)
    for e in made.edits:
        texts[e.file] = texts[e.file].replace(e.old, e.new)
    pipfile = tomllib.loads(texts["Pipfile"])["packages"]
    assert pipfile == {"pyyaml": ">=5.4,<6", "idna": ">=3.7"}
    poetry = tomllib.loads(texts["pyproject.toml"])["tool"]["poetry"]["dependencies"]
    assert poetry["urllib3"] == {"version": ">=1.26.18,<2", "extras": ["socks"]}
    write(tmp_path, texts)
    assert asyncio.run(scan_repo(tmp_path, db)).findings == ()
