"""Each manifest format: what it declares, on which line, and what it refuses to guess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.unit.cve.conftest import write

from corral.workflows.cve.manifests import poetry_to_pep440, read_repo


def by_name(root: Path) -> dict[str, list[tuple[str | None, tuple[str, ...], str, int]]]:
    out: dict[str, list[tuple[str | None, tuple[str, ...], str, int]]] = {}
    for d in read_repo(root).declared:
        out.setdefault(d.name, []).append((d.version, d.specs, d.file, d.line))
    return out


def test_requirements_includes_hashes_markers_extras_continuations(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": (
                "# top comment\n"
                "-r base/requirements-base.txt\n"
                "--constraint constraints.txt\n"
                "--index-url https://example.invalid/simple\n"
                "PyYAML==5.3.1 \\\n"
                "    --hash=sha256:aaaa \\\n"
                "    --hash=sha256:bbbb\n"
                "requests[socks]==2.19.0 ; python_version >= '3'  # trailing comment\n"
                "-e git+https://github.com/x/y.git#egg=y\n"
                "git+https://github.com/x/z.git@main#egg=z\n"
                "zed @ https://example.invalid/zed-1.0.tar.gz\n"
                "./local/pkg\n"
            ),
            "base/requirements-base.txt": "Jinja2>=2.10,<3\n-r ../requirements.txt\n",
            "constraints.txt": "urllib3===1.26.5\n",
        },
    )
    got = by_name(tmp_path)
    assert got["pyyaml"] == [("5.3.1", ("==5.3.1",), "requirements.txt", 5)]
    assert got["requests"][0][:1] == ("2.19.0",) and got["requests"][0][3] == 8
    assert got["jinja2"] == [(None, ("<3,>=2.10",), "base/requirements-base.txt", 1)]
    assert got["urllib3"][0][0] == "1.26.5" and got["urllib3"][0][2] == "constraints.txt"
    result = read_repo(tmp_path)
    skipped = {(i.file, i.line) for i in result.issues if i.kind == "skipped"}
    assert skipped == {("requirements.txt", n) for n in (9, 10, 11, 12)}
    assert not [i for i in result.issues if i.kind == "error"]
    markers = [d.markers for d in result.declared if d.name == "requests"]
    assert markers == ['python_version >= "3"']


def test_bad_lines_and_missing_includes_are_errors_with_lines(tmp_path: Path) -> None:
    write(tmp_path, {"requirements-dev.txt": "ok==1.0\nnot valid ===\n-r missing.txt\nfine\n"})
    result = read_repo(tmp_path)
    errors = [(i.file, i.line) for i in result.issues if i.kind == "error"]
    assert errors == [("requirements-dev.txt", 2), ("requirements-dev.txt", 3)]
    assert [d.name for d in result.declared] == ["ok", "fine"]


PYPROJECT = """\
[project]
name = "demo"
dependencies = [
  "pyyaml==5.3.1",
  "urllib3>=1.26,<2 ; python_version >= '3.8'",
]

[project.optional-dependencies]
web = ["flask-caching==1.10.1", "Django"]

[dependency-groups]
test = ["py==1.11.0", {include-group = "other"}]

[tool.poetry.dependencies]
python = "^3.8"
requests = "^2.19"
jinja2 = { version = "2.10", extras = ["i18n"] }
mylib = { git = "https://github.com/x/mylib.git" }

[tool.poetry.group.dev.dependencies]
pillow = "~8.1"
"""


def test_pyproject_pep621_groups_and_poetry(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": PYPROJECT})
    got = by_name(tmp_path)
    assert got["pyyaml"] == [("5.3.1", ("==5.3.1",), "pyproject.toml", 4)]
    assert got["urllib3"][0][3] == 5
    assert got["flask-caching"][0][3] == 9 and got["django"][0][:2] == (None, ())
    assert got["py"][0][0] == "1.11.0" and got["py"][0][3] == 12
    assert got["requests"] == [(None, ("<3,>=2.19",), "pyproject.toml", 16)]
    assert got["jinja2"][0][0] == "2.10" and got["jinja2"][0][3] == 17
    assert got["pillow"] == [(None, ("<8.2,>=8.1",), "pyproject.toml", 21)]
    assert "python" not in got
    issues = read_repo(tmp_path).issues
    assert [(i.kind, i.line) for i in issues] == [("skipped", 18)]


def test_invalid_toml_is_one_error_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project]\ndependencies = [\n  'a==1',\n  oops\n]\n"})
    result = read_repo(tmp_path)
    assert [(i.kind, i.file, i.line) for i in result.issues] == [("error", "pyproject.toml", 4)]


@pytest.mark.parametrize(
    ("poetry", "pep440"),
    [
        ("^1.2.3", ">=1.2.3,<2"),
        ("^0.2.3", ">=0.2.3,<0.3"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("~1.2.3", ">=1.2.3,<1.3"),
        ("~1", ">=1,<2"),
        ("1.2.3", "==1.2.3"),
        ("1.2.*", "==1.2.*"),
        (">=1.0, <2.0", ">=1.0,<2.0"),
        ("*", ""),
        ("~=1.4", "~=1.4"),
    ],
)
def test_poetry_constraints(poetry: str, pep440: str) -> None:
    assert poetry_to_pep440(poetry) == pep440


def test_poetry_or_constraint_keeps_alternatives(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.poetry.dependencies]\nurllib3 = "^1.26 || ^2.0"\n'})
    [(version, specs, _, line)] = by_name(tmp_path)["urllib3"]
    assert version is None and specs == (">=1.26,<2", ">=2.0,<3") and line == 2


def test_poetry_lock(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "poetry.lock": (
                '[[package]]\nname = "PyYAML"\nversion = "5.3.1"\ndescription = ""\n\n'
                '[[package]]\nname = "mylib"\nversion = "0.1"\n\n[package.source]\ntype = "git"\n'
                'url = "https://x"\n\n'
                '[[package]]\nname = "urllib3"\nversion = "1.26.5"\n\n[metadata]\nlock-version = "2.0"\n'
            )
        },
    )
    got = by_name(tmp_path)
    assert got["pyyaml"] == [("5.3.1", ("==5.3.1",), "poetry.lock", 2)]
    assert got["urllib3"] == [("1.26.5", ("==1.26.5",), "poetry.lock", 15)]
    assert "mylib" not in got
    assert [(i.kind, i.line) for i in read_repo(tmp_path).issues] == [("skipped", 7)]


def test_uv_lock_skips_the_project_itself(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "uv.lock": (
                'version = 1\n\n[[package]]\nname = "demo"\nversion = "0.1.0"\n'
                'source = { editable = "." }\n\n'
                '[[package]]\nname = "py"\nversion = "1.11.0"\n'
                'source = { registry = "https://pypi.org/simple" }\n'
            )
        },
    )
    result = read_repo(tmp_path)
    assert [(d.name, d.version, d.line) for d in result.declared] == [("py", "1.11.0", 9)]
    assert not result.issues


def test_pipfile_lock(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Pipfile.lock": (
                '{\n  "_meta": {"hash": {}},\n  "default": {\n'
                '    "pyyaml": {\n      "hashes": ["sha256:x"],\n      "version": "==5.3.1"\n    },\n'
                '    "mylib": {"git": "https://x", "ref": "abc"}\n  },\n'
                '  "develop": {\n    "py": {"version": "==1.11.0", "markers": "python_version >= \'3\'"}\n'
                "  }\n}\n"
            )
        },
    )
    result = read_repo(tmp_path)
    assert [(d.name, d.version, d.line, d.source) for d in result.declared] == [
        ("pyyaml", "5.3.1", 4, "Pipfile.lock"),
        ("py", "1.11.0", 11, "Pipfile.lock"),
    ]
    assert [(i.kind, i.line) for i in result.issues] == [("skipped", 8)]


def test_pipfile_lock_bad_json_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"Pipfile.lock": '{\n  "default": {\n    "x": \n}\n'})
    [issue] = read_repo(tmp_path).issues
    assert issue.kind == "error" and issue.line == 4


def test_pylock_toml(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pylock.toml": (
                'lock-version = "1.0"\ncreated-by = "uv"\n\n'
                '[[packages]]\nname = "urllib3"\nversion = "2.0.4"\n'
                'wheels = [{ url = "https://files/x.whl", hashes = { sha256 = "ab" } }]\n\n'
                '[[packages]]\nname = "local"\ndirectory = { path = "./local" }\n'
            )
        },
    )
    result = read_repo(tmp_path)
    assert [(d.name, d.version, d.line) for d in result.declared] == [("urllib3", "2.0.4", 5)]
    assert [(i.kind, i.line) for i in result.issues] == [("skipped", 10)]


def test_discovery_skips_virtualenvs_and_vendored_code(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".venv/lib/requirements.txt": "evil==1\n",
            "node_modules/x/requirements.txt": "evil==1\n",
            "services/api/requirements/prod.txt": "good==1\n",
            "README.txt": "not==1\n",
        },
    )
    assert list(by_name(tmp_path)) == ["good"]


def test_nothing_outside_the_repository_is_read(tmp_path: Path) -> None:
    """A manifest linked, or a file included, from outside the repo is an error, and its
    text (a host's secrets, say) appears nowhere in what the scan reports."""
    host = tmp_path / "host"
    write(host, {"secret.txt": "HOST-SECRET-1\nrequests==2.0.0\n"})
    repo = tmp_path / "repo"
    write(
        repo,
        {
            "requirements-dev.txt": "idna==3.6\n-r ../host/secret.txt\n",
            "base/requirements.txt": "jinja2==2.10\n",
        },
    )
    (repo / "requirements.txt").symlink_to(host / "secret.txt")
    (repo / "reqs").mkdir()
    (repo / "reqs" / "requirements-base.txt").symlink_to(repo / "base" / "requirements.txt")
    os.mkfifo(repo / "reqs" / "requirements-ci.txt")  # reading it would block forever
    result = read_repo(repo)
    assert sorted(d.name for d in result.declared) == ["idna", "jinja2"]  # a link inside: once
    errors = {(i.file, i.line, i.message) for i in result.issues if i.kind == "error"}
    assert errors == {
        ("requirements.txt", 1, "links outside the repository: not read"),
        ("requirements-dev.txt", 2,
         "included file ../host/secret.txt is outside the repository: not read"),
        ("reqs/requirements-ci.txt", 1, "not a regular file: not read"),
    }  # fmt: skip
    assert "HOST-SECRET" not in repr(result)
    assert "requirements.txt" not in result.files
