"""The saved triage a resumed CVE campaign reports from: a crash between creating the
campaign and saving it loses nothing, and only an unfinished campaign over exactly the
same repos is picked up again (real SQLite store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.domain import CampaignSpec, ConfigError, TaskSpec
from corral.store import Store
from corral.workflows.cve import open_source
from corral.workflows.cve.campaign import CampaignOptions, RepoEntry, campaign_spec, triage
from corral.workflows.cve.resume import TRIAGE, find_unfinished, load_triage, save_pending

from .conftest import SNAPSHOT


def _repos(tmp_path: Path) -> list[RepoEntry]:
    for name, pin in (("a", "idna==3.6"), ("b", "idna==3.7")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "requirements.txt").write_text(pin + "\n")
    return [RepoEntry(tmp_path / "a"), RepoEntry(tmp_path / "b")]


def test_a_crash_before_the_triage_is_renamed_loses_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        entries = _repos(tmp_path)
        opts = CampaignOptions(db=(str(SNAPSHOT),), use_index=False, install="index")
        triaged = await triage(entries, open_source([str(SNAPSHOT)]), opts)
        spec = campaign_spec(triaged, opts)
        assert spec is not None
        home = tmp_path / "home"
        store = await Store.open(None, home=home)
        try:
            save_pending(home, spec, triaged)
            cid = await store.create_campaign(spec)  # ... and the process dies here
            assert not (home / "cve" / cid / TRIAGE).exists()
            assert await find_unfinished(home, store, entries) == cid  # adopted on the way
            loaded = await load_triage(home, store, cid)
            assert [(t.key, t.plan, t.payload, t.report) for t in loaded] == [
                (t.key, t.plan, t.payload, t.report) for t in triaged
            ]
            assert not list((home / "cve").glob(".pending-*"))
            # Other repos, or a campaign with nothing left to run: not picked up.
            assert await find_unfinished(home, store, entries[:1]) is None
            for t in await store.tasks(campaign_id=cid):
                await store.request_cancel([t.id])
            await store.set_campaign_state(cid, "cancelled")
            assert await find_unfinished(home, store, entries) is None
            other = await store.create_campaign(
                CampaignSpec(
                    name="x", tasks=(TaskSpec(id="t", repo=str(tmp_path), instructions="i"),)
                )
            )
            with pytest.raises(ConfigError, match="has no CVE triage"):
                await load_triage(home, store, other)
        finally:
            await store.close()

    asyncio.run(go())
