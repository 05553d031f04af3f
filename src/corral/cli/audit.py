"""`corral audit export`: the append-only audit log as JSON lines on stdout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.common import HomeOpt, StoreOpt, fail, with_store

if TYPE_CHECKING:
    from corral.store import Store

# The audit log's kinds, spelled out so the help text does not import the store;
# tests/unit/cli/test_cli_start.py checks they are corral.store.audit.KINDS.
KINDS: tuple[str, ...] = ("action", "egress", "approval", "policy")

SinceOpt = Annotated[
    str | None, typer.Option("--since", help="ISO time; older entries are skipped.")
]
AttemptOpt = Annotated[
    str | None, typer.Option("--attempt", help="Only this attempt (id or unique prefix).")
]
KindOpt = Annotated[str | None, typer.Option("--kind", help=f"Only one kind: {', '.join(KINDS)}.")]
audit_app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {value!r} is not an ISO date or time (e.g. 2025-01-31T12:00:00Z)")
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@audit_app.command("export")
def export(
    since: SinceOpt = None,
    attempt: AttemptOpt = None,
    kind: KindOpt = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Write audit entries as JSON lines (oldest first): `corral audit export > audit.jsonl`."""
    from corral.orchestrator.policy import default_redactor
    from corral.store.audit import AuditStore

    start = _since(since)
    if kind is not None and kind not in KINDS:
        fail(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")

    async def go(s: Store) -> int:
        attempt_id = await s.resolve_attempt_id(attempt) if attempt else None
        redactor = default_redactor()
        n = 0
        async for entry in AuditStore(s).entries(since=start, attempt_id=attempt_id, kind=kind):
            # stored redacted; redacted again for rows older than a secret's registration
            typer.echo(json.dumps(redactor.redact_obj(entry.to_json()), sort_keys=True))
            n += 1
        return n

    with_store(store, home, go)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
