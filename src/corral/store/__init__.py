"""The event log and records: SQLAlchemy Core, SQLite by default, Postgres by URL."""

from corral.store.store import AttemptRecord, Store, database_url

__all__ = ["AttemptRecord", "Store", "database_url"]
