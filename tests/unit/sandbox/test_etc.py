"""The sandbox's /etc copy: only public allowlisted entries, shared only when trusted."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from corral.sandbox import etc

OWN = etc.own_files("user", 1000, "/home/user")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "etc"
    (src / "ssl" / "certs").mkdir(parents=True)
    (src / "ssl" / "private").mkdir(mode=0o700)
    (src / "ssl" / "private" / "key.pem").write_text("SECRET")
    (src / "ssl" / "certs" / "bundle.crt").write_text("CERTS")
    os.symlink("bundle.crt", src / "ssl" / "certs" / "abcd.0")
    (src / "services").write_text("http 80/tcp\n")
    (src / "shadow").write_text("root:$6$...")  # not allowlisted
    (src / "protocols").write_text("ip 0 IP\n")
    os.chmod(src / "protocols", 0o600)  # not public: skipped
    (src / "real-tz").write_text("UTC\n")
    os.symlink(src / "real-tz", src / "timezone")  # a top-level link is followed
    return src


def test_copy_holds_only_public_allowlisted_entries(source: Path) -> None:
    copy = etc.build(OWN, source=source)
    try:
        names = {p.relative_to(copy).as_posix() for p in copy.rglob("*")}
        assert names == {
            "ssl", "ssl/certs", "ssl/certs/bundle.crt", "ssl/certs/abcd.0", "services",
            "timezone", "passwd", "group", "hosts",
        }  # fmt: skip
        assert (copy / "ssl" / "certs" / "abcd.0").is_symlink()
        assert not (copy / "timezone").is_symlink()
        assert (copy / "timezone").read_text() == "UTC\n"
        assert "user:x:1000:1000" in (copy / "passwd").read_text()
    finally:
        shutil.rmtree(copy.parent)


def test_copy_is_shared_and_follows_changes(source: Path) -> None:
    first = etc._shared(OWN, source)
    try:
        assert etc._shared(OWN, source) == first  # reused, not rebuilt
        (source / "ssl" / "certs" / "new.crt").write_text("NEW")
        second = etc._shared(OWN, source)
        try:
            assert second != first and (second / "ssl" / "certs" / "new.crt").exists()
        finally:
            shutil.rmtree(second.parent)
    finally:
        shutil.rmtree(first.parent)


def test_a_dir_writable_by_others_is_not_trusted(source: Path) -> None:
    name = f"{etc.PREFIX}{os.geteuid()}-{etc.fingerprint(OWN, source)}"
    planted = Path(tempfile.gettempdir()) / name
    (planted / "etc").mkdir(parents=True)
    (planted / "etc" / "passwd").write_text("planted")
    os.chmod(planted / "etc", 0o777)
    try:
        used = etc._shared(OWN, source)
        try:
            assert used.parent != planted
            assert "user:x:1000" in (used / "passwd").read_text()
        finally:
            shutil.rmtree(used.parent)
    finally:
        shutil.rmtree(planted)
