"""Every store test runs on SQLite and on Postgres (127.0.0.1:5432, database `test`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.domain import new_id
from corral.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[Store]:
    url = None if request.param == "sqlite" else pg_url
    s = await Store.open(url, home=tmp_path / ".corral")
    yield s
    await s.close()


async def new_attempt(store: Store, task: str = "fix it") -> str:
    """A bare attempt row to hang events on."""
    aid = new_id("att")
    await store.create_attempt(aid, task=task, repo="/r", model="scripted:x", sandbox="bwrap")
    return aid
