"""A bump in a hash-carrying manifest rewrites the hashes too, in the file's own layout;
without the new digests nothing is written (never a stale hash)."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from corral.workflows.cve import OsvDatabase, plan_fixes, scan_repo
from corral.workflows.cve.campaign import hash_problems
from corral.workflows.cve.edits import EditPlan, build_edits, hashed_requirement_files
from corral.workflows.cve.index import ReleaseFile, parse_release_files
from corral.workflows.cve.lockreqs import requirements
from corral.workflows.cve.rehash import rehash_requirement

from .conftest import write

OLD_W, OLD_S = "a" * 64, "b" * 64
NEW_W, NEW_S = "1" * 64, "2" * 64
URL = "https://files.example/idna"
FILES = [
    ReleaseFile("idna-3.7-py3-none-any.whl", NEW_W, f"{URL}/idna-3.7-py3-none-any.whl", 66836,
                "2024-04-11T03:34:25.000Z"),
    ReleaseFile("idna-3.7.tar.gz", NEW_S, f"{URL}/idna-3.7.tar.gz", 189575,
                "2024-04-11T03:34:27.000Z"),
]  # fmt: skip


def _bump(root: Path, db: OsvDatabase, digests: bool = True) -> EditPlan:
    plan = asyncio.run(plan_fixes(asyncio.run(scan_repo(root, db)), db))
    assert {(u.package, u.to_version) for u in plan.upgrades} == {("idna", "3.7")}
    return build_edits(root, plan, {("idna", "3.7"): FILES} if digests else None)


def _applied(root: Path, made: EditPlan, name: str) -> str:
    text = (root / name).read_text()
    for e in made.edits:
        if e.file == name:
            assert text.count(e.old) == 1, e.old
            text = text.replace(e.old, e.new)
    (root / name).write_text(text)
    return text


def test_requirements_continuation_lines_keep_their_layout(tmp_path: Path, db: OsvDatabase) -> None:
    before = (
        "certifi==2024.2.2 \\\n    --hash=sha256:" + "c" * 64 + "\n"
        f"idna==3.6 \\\n    --hash=sha256:{OLD_W} \\\n    --hash=sha256:{OLD_S}\n"
        "    # via requests\n"
    )
    write(tmp_path, {"requirements.txt": before})
    made = _bump(tmp_path, db)
    assert not made.hash_gaps and made.edits[0].hashes
    assert _applied(tmp_path, made, "requirements.txt") == (
        "certifi==2024.2.2 \\\n    --hash=sha256:" + "c" * 64 + "\n"
        f"idna==3.7 \\\n    --hash=sha256:{NEW_W} \\\n    --hash=sha256:{NEW_S}\n"
        "    # via requests\n"
    )


def test_requirements_inline_hashes_crlf_and_no_final_newline() -> None:
    block = [f"idna==3.6 --hash sha256:{OLD_W} --hash sha256:{OLD_S}  # pinned"]
    assert rehash_requirement(block, FILES) == [
        f"idna==3.6 --hash sha256:{NEW_W} --hash sha256:{NEW_S}  # pinned"
    ]
    block = ["idna==3.6  \\\r\n", f"  --hash=sha256:{OLD_W}"]  # one old hash, now two
    assert rehash_requirement(block, FILES) == [
        "idna==3.6  \\\r\n",
        f"  --hash=sha256:{NEW_W}  \\\r\n",
        f"  --hash=sha256:{NEW_S}",
    ]


POETRY_LEGACY = f"""[[package]]
name = "idna"
version = "3.6"
description = ""
category = "main"
optional = false
python-versions = ">=3.5"

[metadata]
lock-version = "1.1"
python-versions = "^3.8"
content-hash = "{"d" * 64}"

[metadata.files]
idna = [
    {{file = "idna-3.6-py3-none-any.whl", hash = "sha256:{OLD_W}"}},
    {{file = "idna-3.6.tar.gz", hash = "sha256:{OLD_S}"}},
]
"""


def test_poetry_lock_both_layouts(tmp_path: Path, db: OsvDatabase) -> None:
    current = (
        POETRY_LEGACY.replace('category = "main"\n', "")
        .replace(
            'python-versions = ">=3.5"\n',
            'python-versions = ">=3.5"\nfiles = [\n'
            f'    {{file = "idna-3.6-py3-none-any.whl", hash = "sha256:{OLD_W}"}},\n'
            f'    {{file = "idna-3.6.tar.gz", hash = "sha256:{OLD_S}"}},\n]\n',
        )
        .split("\n[metadata.files]")[0]
    )
    for layout, text in (("2.0", current), ("1.1", POETRY_LEGACY)):
        root = tmp_path / layout
        write(root, {"poetry.lock": text})
        made = _bump(root, db)
        assert not made.hash_gaps and not made.problems, layout
        after = _applied(root, made, "poetry.lock")
        data = tomllib.loads(after)
        files = data["package"][0].get("files") or data["metadata"]["files"]["idna"]
        assert data["package"][0]["version"] == "3.7"
        assert files == [
            {"file": "idna-3.7-py3-none-any.whl", "hash": f"sha256:{NEW_W}"},
            {"file": "idna-3.7.tar.gz", "hash": f"sha256:{NEW_S}"},
        ]
        assert OLD_W not in after and after.count("\n") == text.count("\n")
        assert requirements(root / "poetry.lock", ["idna"]) == [
            f"idna==3.7 --hash=sha256:{NEW_W} --hash=sha256:{NEW_S}"
        ]


UV = f"""version = 1
requires-python = ">=3.11"

[[package]]
name = "idna"
version = "3.6"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "{URL}/idna-3.6.tar.gz", hash = "sha256:{OLD_S}", size = 175426, upload-time = "2023-11-25T15:40:54.902Z" }}
wheels = [
    {{ url = "{URL}/idna-3.6-py3-none-any.whl", hash = "sha256:{OLD_W}", size = 61567, upload-time = "2023-11-25T15:40:52.604Z" }},
]

[[package]]
name = "svc"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "idna" }},
]

[package.metadata]
requires-dist = [{{ name = "idna", specifier = "==3.6" }}]
"""


def test_uv_lock_sdist_and_wheels(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"uv.lock": UV})
    made = _bump(tmp_path, db)
    after = _applied(tmp_path, made, "uv.lock")
    pkg = tomllib.loads(after)["package"][0]
    assert pkg["version"] == "3.7"
    assert pkg["sdist"] == {"url": f"{URL}/idna-3.7.tar.gz", "hash": f"sha256:{NEW_S}",
                            "size": 189575, "upload-time": "2024-04-11T03:34:27.000Z"}  # fmt: skip
    assert pkg["wheels"] == [{"url": f"{URL}/idna-3.7-py3-none-any.whl", "hash": f"sha256:{NEW_W}",
                              "size": 66836, "upload-time": "2024-04-11T03:34:25.000Z"}]  # fmt: skip
    assert f'sdist = {{ url = "{URL}/idna-3.7.tar.gz", hash = ' in after  # same spacing
    assert after.split("[[package]]")[2] == UV.split("[[package]]")[2]  # the rest untouched
    assert requirements(tmp_path / "uv.lock", ["idna"]) == [
        f"idna==3.7 --hash=sha256:{NEW_W} --hash=sha256:{NEW_S}"
    ]


PYLOCK = f"""lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "idna"
version = "3.6"
index = "https://pypi.org/simple"
sdist = {{name = "idna-3.6.tar.gz", upload-time = 2023-11-25T15:40:54Z, url = "{URL}/idna-3.6.tar.gz", size = 175426, hashes = {{sha256 = "{OLD_S}"}}}}
wheels = [{{name = "idna-3.6-py3-none-any.whl", upload-time = 2023-11-25T15:40:52Z, url = "{URL}/idna-3.6-py3-none-any.whl", size = 61567, hashes = {{sha256 = "{OLD_W}"}}}}]
"""


def test_pylock_inline_tables_and_sub_tables(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path / "a", {"pylock.toml": PYLOCK})
    made = _bump(tmp_path / "a", db)
    pkg = tomllib.loads(_applied(tmp_path / "a", made, "pylock.toml"))["packages"][0]
    assert pkg["version"] == "3.7" and pkg["sdist"]["name"] == "idna-3.7.tar.gz"
    assert pkg["sdist"]["hashes"] == {"sha256": NEW_S} and pkg["sdist"]["size"] == 189575
    assert [w["hashes"]["sha256"] for w in pkg["wheels"]] == [NEW_W]
    assert str(pkg["wheels"][0]["upload-time"]).startswith("2024-04-11 03:34:25")  # a datetime
    # The same data as sub-tables is a layout corral does not rewrite: a gap, no edit.
    sub = PYLOCK.split("sdist =")[0] + (
        f'\n[[packages.wheels]]\nname = "idna-3.6-py3-none-any.whl"\n'
        f'url = "{URL}/idna-3.6-py3-none-any.whl"\nhashes = {{sha256 = "{OLD_W}"}}\n'
    )
    write(tmp_path / "b", {"pylock.toml": sub})
    made = _bump(tmp_path / "b", db)
    assert not made.edits and "sub-tables" in made.hash_gaps[0].why


PIPFILE = {
    "_meta": {"hash": {"sha256": "e" * 64}, "pipfile-spec": 6, "requires": {}, "sources": []},
    "default": {
        "idna": {
            "hashes": [f"sha256:{OLD_S}", f"sha256:{OLD_W}"],
            "index": "pypi",
            "markers": "python_version >= '3.5'",
            "version": "==3.6",
        }
    },
    "develop": {},
}


def test_pipfile_lock_hashes(tmp_path: Path, db: OsvDatabase) -> None:
    text = json.dumps(PIPFILE, indent=4, sort_keys=True) + "\n"
    write(tmp_path, {"Pipfile.lock": text})
    made = _bump(tmp_path, db)
    after = _applied(tmp_path, made, "Pipfile.lock")
    expected = json.loads(text)
    expected["default"]["idna"] |= {"version": "==3.7",
                                    "hashes": [f"sha256:{NEW_W}", f"sha256:{NEW_S}"]}  # fmt: skip
    assert after == json.dumps(expected, indent=4, sort_keys=True) + "\n"  # pipenv's own layout
    assert requirements(tmp_path / "Pipfile.lock", ["idna"]) == [
        f"idna==3.7 ; python_version >= '3.5' --hash=sha256:{NEW_W} --hash=sha256:{NEW_S}"
    ]


def test_without_digests_nothing_stale_is_written(tmp_path: Path, db: OsvDatabase) -> None:
    write(tmp_path, {"requirements.txt": f"idna==3.6 --hash=sha256:{OLD_W}\n", "uv.lock": UV})
    made = _bump(tmp_path, db, digests=False)
    assert made.edits == [] and {g.file for g in made.hash_gaps} == {"requirements.txt", "uv.lock"}
    gaps = hash_problems(made.hash_gaps)
    assert gaps == ("idna 3.7: hashes could not be refreshed (not looked up); left unchanged at "
                    "requirements.txt:1, uv.lock:5",)  # fmt: skip
    # A file without hashes is still bumped as before.
    write(tmp_path, {"requirements.txt": "idna==3.6\n", "uv.lock": "version = 1\n"})
    made = _bump(tmp_path, db, digests=False)
    assert [e.new for e in made.edits] == ["idna==3.7\n"] and not made.hash_gaps


def test_hashed_files_are_found_through_includes(tmp_path: Path) -> None:
    write(tmp_path, {
        "requirements.txt": "-r base.txt\n", "base.txt": f"idna==3.6 --hash=sha256:{OLD_W}\n",
        "requirements-plain.txt": "idna==3.6\n",
    })  # fmt: skip
    found = hashed_requirement_files(tmp_path, ["requirements.txt", "requirements-plain.txt"])
    assert found == ("requirements.txt",)


def test_release_files_from_the_index_json() -> None:
    body = {"urls": [
        {"filename": "x-1.tar.gz", "url": "u2", "size": 2, "digests": {"sha256": NEW_S.upper()},
         "upload_time_iso_8601": "2024-01-01T00:00:00Z"},
        {"filename": "x-1-py3-none-any.whl", "url": "u1", "digests": {"sha256": NEW_W}},
    ]}  # fmt: skip
    files = parse_release_files(body)
    assert [(f.filename, f.sha256, f.size) for f in files] == [
        ("x-1-py3-none-any.whl", NEW_W, None),
        ("x-1.tar.gz", NEW_S, 2),
    ]
    with pytest.raises(ValueError, match="no sha256"):
        parse_release_files({"urls": [{"filename": "x.whl", "digests": {"md5": "00"}}]})
    with pytest.raises(ValueError, match="no files"):
        parse_release_files({"urls": []})


def test_a_lock_entry_without_hashes_needs_no_digests(tmp_path: Path, db: OsvDatabase) -> None:
    lock = (
        '[[package]]\nname = "idna"\nversion = "3.6"\nfiles = []\n\n'
        '[metadata]\nlock-version = "1.1"\n\n[metadata.files]\nidna = []\n'
    )
    write(tmp_path, {"poetry.lock": lock})
    made = _bump(tmp_path, db, digests=False)
    assert not made.hash_gaps and [e.hashes for e in made.edits] == [False]
    assert 'version = "3.7"' in _applied(tmp_path, made, "poetry.lock")
