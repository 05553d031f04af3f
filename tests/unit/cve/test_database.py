"""The local OSV database: lazy index completeness, zip exports, broken files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from corral.domain import ConfigError
from corral.workflows.cve import OsvDatabase


@pytest.mark.slow
def test_lazy_index_reaches_every_advisory(snapshot: Path, tmp_path: Path) -> None:
    db = OsvDatabase.open(snapshot, cache_dir=tmp_path)
    assert not db.cached
    everything = db.all_advisories()
    assert len(everything) == len(db) == 2661
    assert not db.errors
    withdrawn = 0
    for file, adv in everything:
        assert adv.packages(), file
        for package in adv.packages():
            assert file in db.candidates(package), (file, package)
            found = {a.id for a in db.for_package(package)}
            assert (adv.id in found) is not adv.withdrawn, (adv.id, package)
        withdrawn += adv.withdrawn
    assert withdrawn == 10
    # The parse cache gives the same answers without YAML.
    assert db.save_cache() is not None
    warm = OsvDatabase.open(snapshot, cache_dir=tmp_path)
    assert warm.cached and len(warm) == len(db)
    for package in ("urllib3", "pyyaml", "py", "flask-caching", "django"):
        assert [a.id for a in warm.for_package(package)] == [a.id for a in db.for_package(package)]


def test_cache_is_ignored_when_the_directory_changes(tmp_path: Path) -> None:
    src = tmp_path / "db"
    src.mkdir()
    rec = {
        "id": "A-1",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "versions": ["1.0"]}],
    }
    (src / "A-1.json").write_text(json.dumps(rec))
    OsvDatabase.open(src, cache_dir=tmp_path / "c").save_cache()
    assert OsvDatabase.open(src, cache_dir=tmp_path / "c").cached
    (src / "B-1.json").write_text(json.dumps(rec | {"id": "B-1"}))
    fresh = OsvDatabase.open(src, cache_dir=tmp_path / "c")
    assert not fresh.cached and [a.id for a in fresh.for_package("a")] == ["A-1", "B-1"]


def test_lookup_normalises_names(db: OsvDatabase) -> None:
    assert db.for_package("PyYAML") == db.for_package("pyyaml")
    assert {a.id for a in db.for_package("PyYAML")} == {
        "PYSEC-2018-49",
        "PYSEC-2020-176",
        "PYSEC-2020-96",
        "PYSEC-2021-142",
    }
    assert db.for_package("no-such-package-here") == ()


def test_zip_export_of_json_records(tmp_path: Path, snapshot: Path) -> None:
    import yaml

    export = tmp_path / "PyPI.zip"
    with zipfile.ZipFile(export, "w") as zf:
        for name in ("pyyaml/PYSEC-2021-142.yaml", "flask-caching/PYSEC-2021-13.yaml"):
            data = yaml.safe_load((snapshot / "vulns" / name).read_text())
            zf.writestr(Path(name).stem + ".json", json.dumps(data, default=str))
    db = OsvDatabase.open(export)
    assert [a.id for a in db.for_package("pyyaml")] == ["PYSEC-2021-142"]
    assert db.for_package("flask-caching") == ()  # withdrawn


def test_broken_files_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"id": "X", "affected": [{"package": {"name": "a"')
    (tmp_path / "noid.yaml").write_text("affected: []\nname: a\n")
    (tmp_path / "good.json").write_text(
        json.dumps(
            {
                "id": "G-1",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "a"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                    }
                ],
            }
        )
    )
    db = OsvDatabase.open(tmp_path)
    assert [a.id for a in db.for_package("a")] == ["G-1"]
    assert sorted(e.split(":")[0] for e in db.errors) == ["bad.json", "noid.yaml"]


def test_bad_paths_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        OsvDatabase.open(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ConfigError, match="neither"):
        OsvDatabase.open(tmp_path / "x.txt")
    with pytest.raises(ConfigError, match="no OSV"):
        OsvDatabase.open(tmp_path)
