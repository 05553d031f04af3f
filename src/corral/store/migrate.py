"""Schema changes go through Alembic migrations; the store upgrades on open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: sa.Connection) -> None:
    """Bring the database to the newest revision (a no-op when it is already there)."""
    cfg = alembic_config(connection)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if MigrationContext.configure(connection).get_current_revision() == head:
        return
    command.upgrade(cfg, "head")


def current_revision(connection: sa.Connection) -> Any:
    return MigrationContext.configure(connection).get_current_revision()
