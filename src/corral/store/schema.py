"""The one declared schema. Every table the store touches is here."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("repo", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("sandbox", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("steps", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("patch_path", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
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
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.UniqueConstraint("attempt_id", "seq", name="uq_events_attempt_seq"),
)
