"""What the CLI shows is redacted even when the stored row is not: rows written before a
secret was known (or by an older corral) leak nothing through `review show` or
`audit export`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.domain import CampaignSpec, TaskSpec
from corral.domain.events import utcnow
from corral.orchestrator.policy import redact
from corral.store import Store
from corral.store.audit import AuditEntry, AuditStore
from corral.store.schema import reviews

SECRET = "late-known-secret-4d2c9e1f"


async def test_review_show_and_audit_export_redact_old_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / ".corral"
    store = await Store.open(home=home)
    spec = CampaignSpec(name="c", tasks=(TaskSpec(id="t", repo=str(tmp_path), instructions="x"),))
    cid = await store.create_campaign(spec)
    (task,) = await store.tasks(campaign_id=cid)
    async with store.engine.begin() as conn:
        await conn.execute(
            reviews.insert().values(
                id="rev_old", task_id=task.id, attempt_id="att_old", state="pending",
                reason=f"escalated: key is {SECRET}", diff=f"+TOKEN={SECRET}\n",
                created_at=utcnow(),
            )
        )  # fmt: skip
    await AuditStore(store).append(
        [AuditEntry(kind="policy", who="old", detail={"action": f"echo {SECRET}"})]
    )
    await store.close()

    monkeypatch.setenv("CORRAL_LATE_TOKEN", SECRET)
    monkeypatch.setattr(redact, "_DEFAULT", None)  # the CLI process knows it now
    runner = CliRunner()
    outputs = []
    for args in (["review", "show", "rev_old"], ["review", "show", "rev_old", "--json"],
                 ["audit", "export"]):  # fmt: skip
        out = await asyncio.to_thread(runner.invoke, app, [*args, "--home", str(home)])
        assert out.exit_code == 0, out.output
        outputs.append(out.output)
    assert all(SECRET not in o and "[REDACTED:env:CORRAL_LATE_TOKEN]" in o for o in outputs)
    shown = json.loads(outputs[1])
    assert shown["diff"] == "+TOKEN=[REDACTED:env:CORRAL_LATE_TOKEN]\n"
