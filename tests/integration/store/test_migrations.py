"""The schema the migrations build is exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from corral.store import Store, database_url
from corral.store.migrate import current_revision
from corral.store.schema import metadata


def _diff(url: str) -> list[object]:
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert current_revision(conn) is not None
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migrated_schema_equals_declared(backend: str, tmp_path: Path, pg_url: str) -> None:
    url = None if backend == "sqlite" else pg_url
    store = await Store.open(url, home=tmp_path)
    await store.close()
    assert _diff(database_url(url, tmp_path)) == []


async def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        store = await Store.open(home=tmp_path)
        await store.close()
    assert _diff(database_url(None, tmp_path)) == []


def test_the_comparison_notices_a_difference(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tasks ADD COLUMN stray INTEGER"))
        ctx = MigrationContext.configure(conn)
        assert compare_metadata(ctx, metadata), "an extra column must show up as a difference"
    engine.dispose()


def test_head_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from corral.store.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
