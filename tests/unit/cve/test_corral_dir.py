"""The repo's `.corral/` is written by the host as root: links the repo planted there
must not turn those writes into writes elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import ConfigError
from corral.workflows.cve import open_source
from corral.workflows.cve.campaign import CampaignOptions, RepoEntry, triage
from corral.workflows.cve.wheels import ignore_corral_dir


def test_a_linked_corral_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".corral").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"\.corral is not a directory"):
        ignore_corral_dir(repo)
    assert list(elsewhere.iterdir()) == []  # no .gitignore written through the link


def test_links_inside_it_are_removed_before_anything_is_written(tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("keep me\n")
    repo = tmp_path / "repo"
    (repo / ".corral").mkdir(parents=True)
    for name in ("pins.txt", ".gitignore", "depcheck.py"):
        (repo / ".corral" / name).symlink_to(victim)
    d = ignore_corral_dir(repo)
    (d / "pins.txt").write_text("idna==3.7\n")
    assert victim.read_text() == "keep me\n"
    assert not any(p.is_symlink() for p in d.iterdir())
    assert (d / ".gitignore").read_text() == "*\n"


async def test_triage_reports_such_a_repo_instead_of_failing(
    tmp_path: Path, snapshot: Path
) -> None:
    """The refusal is the repo's own error in the triage, not the campaign's end."""
    (tmp_path / "etc").mkdir()
    repo = tmp_path / "planted"
    repo.mkdir()
    (repo / "requirements.txt").write_text("idna==3.6\n")
    (repo / ".corral").symlink_to(tmp_path / "etc")
    opts = CampaignOptions(db=(str(snapshot),), use_index=False)  # a wheelhouse: .corral/
    (t,) = await triage([RepoEntry(repo)], open_source([str(snapshot)]), opts)
    assert t.error is not None and t.error.startswith("cannot prepare: "), t.error
    assert t.payload is None and list((tmp_path / "etc").iterdir()) == []
