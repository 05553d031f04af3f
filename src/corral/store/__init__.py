"""The event log and records: SQLAlchemy Core, SQLite by default, Postgres by URL."""

from corral.store.rows import CampaignRow, Lease, ReviewRow, TaskRow
from corral.store.store import AttemptRecord, Store, database_url

__all__ = ["AttemptRecord", "CampaignRow", "Lease", "ReviewRow", "Store", "TaskRow", "database_url"]
