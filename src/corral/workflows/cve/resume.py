"""Carrying on a `corral cve campaign` after a crash (even `kill -9`).

The tasks live in the store, so the orchestrator's own resume carries them on: finished
ones stay finished, the attempts the crash cut short are retried, and deliveries are
idempotent (one branch, one PR per repo). What the store does not hold is the triage -
every repo's findings and plan, clean and unfixable repos included - which the final
report covers. It is saved as HOME/cve/CAMPAIGN/triage.json: written before the campaign
is created (as a pending file) and renamed once it is, so no crash leaves a campaign
without its triage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corral.domain import CampaignSpec, ConfigError
from corral.store import Store
from corral.workflows.cve.campaign import RepoEntry, Triaged
from corral.workflows.cve.models import FixPlan, ScanReport
from corral.workflows.cve.tasks import CvePayload

TRIAGE = "triage.json"
_PENDING = ".pending-"
_MOVING = ("pending", "ready", "running", "approved")


def cve_dir(home: Path) -> Path:
    return home / "cve"


def save_pending(home: Path, spec: CampaignSpec, triaged: Sequence[Triaged]) -> Path:
    """The triage, before the campaign exists; `adopt` moves it under the campaign id."""
    doc = {
        "name": spec.name,
        "repos": sorted(str(t.entry.path) for t in triaged),
        "unique_keys": sorted(t.unique_key or "" for t in spec.tasks),
        "triaged": [_dump(t) for t in triaged],
    }
    path = cve_dir(home) / f"{_PENDING}{spec.name}-{os.getpid()}.json"
    _write(path, json.dumps(doc))
    return path


def adopt(home: Path, cid: str, pending: Path) -> Path:
    dest = cve_dir(home) / cid / TRIAGE
    dest.parent.mkdir(parents=True, exist_ok=True)
    if pending.exists():
        os.replace(pending, dest)
    return dest


async def load_triage(home: Path, store: Store, cid: str) -> list[Triaged]:
    """The triage of campaign CID, or a clear error when it was not a CVE campaign."""
    path = cve_dir(home) / cid / TRIAGE
    if not path.is_file():
        await _adopt_orphans(home, store)
    if not path.is_file():
        raise ConfigError(
            f"campaign {cid} has no CVE triage under {cve_dir(home)} (was it started by "
            "`corral cve campaign` with this --home?); `corral campaign resume` runs its tasks"
        )
    try:
        doc = json.loads(path.read_text())
        return [_load(d) for d in doc["triaged"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: unreadable triage ({type(e).__name__}: {e})") from None


async def find_unfinished(home: Path, store: Store, entries: Sequence[RepoEntry]) -> str | None:
    """The newest CVE campaign over exactly these repos that still has work to do."""
    await _adopt_orphans(home, store)
    want = sorted(str(e.path) for e in entries)
    found = []
    for path in cve_dir(home).glob(f"*/{TRIAGE}"):
        try:
            if json.loads(path.read_text()).get("repos") == want:
                found.append((path.stat().st_mtime, path.parent.name))
        except (OSError, ValueError, AttributeError):
            continue
    for _, cid in sorted(found, reverse=True):
        camp = await store.get_campaign(cid)
        if camp is None or camp.state == "cancelled":
            continue
        counts = (await store.summary(cid))["counts"]
        if any(counts.get(s, 0) for s in _MOVING):
            return cid
    return None


def owners_of(home: Path, keys: Sequence[str]) -> list[str]:
    """The saved CVE campaigns whose tasks already hold some of these unique keys."""
    want = set(keys)
    found = []
    for path in sorted(cve_dir(home).glob(f"*/{TRIAGE}")):
        try:
            if want & set(json.loads(path.read_text()).get("unique_keys") or ()):
                found.append(path.parent.name)
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return found


async def _adopt_orphans(home: Path, store: Store) -> None:
    """A crash between creating the campaign and renaming its pending triage: match the
    pending file to its campaign by name and task keys, and finish the rename."""
    pending = sorted(cve_dir(home).glob(f"{_PENDING}*.json"))
    if not pending:
        return
    camps = await store.list_campaigns(500)
    for path in pending:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for camp in camps:
            if camp.name != doc.get("name"):
                continue
            keys = sorted(t.spec.unique_key or "" for t in await store.tasks(campaign_id=camp.id))
            if keys == doc.get("unique_keys"):
                adopt(home, camp.id, path)
                break


def _dump(t: Triaged) -> dict[str, Any]:
    return {
        "path": str(t.entry.path),
        "test_command": t.entry.test_command,
        "key": t.key,
        "report": t.report.model_dump(mode="json") if t.report else None,
        "plan": t.plan.model_dump(mode="json") if t.plan else None,
        "payload": t.payload.model_dump(mode="json") if t.payload else None,
        "error": t.error,
        "rank": t.rank,
        "notes": t.notes,
    }


def _load(d: dict[str, Any]) -> Triaged:
    return Triaged(
        entry=RepoEntry(Path(d["path"]), d.get("test_command")),
        key=d["key"],
        report=ScanReport.model_validate(d["report"]) if d.get("report") else None,
        plan=FixPlan.model_validate(d["plan"]) if d.get("plan") else None,
        payload=CvePayload.model_validate(d["payload"]) if d.get("payload") else None,
        error=d.get("error"),
        rank=int(d.get("rank", -1)),
        notes=list(d.get("notes") or []),
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
