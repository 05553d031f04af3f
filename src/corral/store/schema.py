"""The one declared schema. Every table the store touches is here; migrations must match it
(tests/integration/store/test_migrations.py compares them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("team", sa.String(100), nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=True),
    sa.Column("weight", sa.Float, nullable=False, server_default="1"),
    sa.Column("budget_usd", sa.Float, nullable=True),
    sa.Column("deadline_at", TS, nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "campaign_id",
        sa.String(64),
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("team", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("depends_on", sa.Text, nullable=False, server_default="[]"),
    sa.Column("unique_key", sa.String(200), nullable=True, unique=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("ready_at", TS, nullable=True),
    sa.Column("lease_token", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("campaign_id", "key", name="uq_tasks_campaign_key"),
    sa.Index("ix_tasks_state", "state", "priority"),
    sa.Index("ix_tasks_campaign", "campaign_id", "state"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("number", sa.Integer, nullable=False, server_default="1"),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("repo", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("sandbox", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("error_kind", sa.String(16), nullable=True),
    sa.Column("steps", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("patch_path", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("fencing_token", sa.Integer, nullable=True),
    sa.Column("heartbeat_at", TS, nullable=True),
    sa.Column("lease_expires_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Index("ix_attempts_task", "task_id"),
    sa.Index("ix_attempts_status", "status", "lease_expires_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "attempt_id",
        sa.String(64),
        sa.ForeignKey("attempts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.UniqueConstraint("attempt_id", "seq", name="uq_events_attempt_seq"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("attempt_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("diff", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("decided_by", sa.String(100), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("decided_at", TS, nullable=True),
    sa.Index("ix_reviews_state", "state"),
)

side_effects = sa.Table(
    "side_effects",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("attempt_id", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# Append-only: the store offers inserts and reads for it, never updates or deletes.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("attempt_id", sa.String(64), nullable=True),
    sa.Column("task_id", sa.String(64), nullable=True),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_attempt", "attempt_id"),
)
