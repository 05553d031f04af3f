"""`corral cve campaign`: scan many repos, triage, one task per vulnerable repo, run, report.

Triage happens on the host before anything runs: repos are deduplicated, scanned, planned,
and ordered by their worst severity (task priority), and each vulnerable repo gets its
wheelhouse prepared so the sandbox can install offline. The run itself is an ordinary
orchestrator campaign (concurrency, budgets, retries, review queue, progress).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from corral.domain import CampaignSpec, ConfigError, TaskSpec
from corral.workflows.cve import depcheck, lockreqs
from corral.workflows.cve.deliver import KIND, register
from corral.workflows.cve.digests import Found, check_wheelhouse, release_digests
from corral.workflows.cve.edits import HashGap, build_edits, hashed_requirement_files
from corral.workflows.cve.index import PyPIIndex
from corral.workflows.cve.models import FixPlan, ScanReport
from corral.workflows.cve.osv import AdvisorySource
from corral.workflows.cve.planner import plan_fixes
from corral.workflows.cve.scanner import scan_repo
from corral.workflows.cve.tasks import (
    CvePayload,
    detect_tests,
    render_instructions,
    requirement_files,
)
from corral.workflows.cve.verify import DEPCHECK, LOCKREQS
from corral.workflows.cve.wheels import Wheelhouse, ignore_corral_dir, pins_for, prepare

DEFAULT_MODEL = "playbook:cve"


@dataclass(frozen=True)
class RepoEntry:
    path: Path
    test_command: str | None = None


@dataclass
class Triaged:
    """One repository after scan and plan: what the campaign will do about it."""

    entry: RepoEntry
    key: str
    report: ScanReport | None = None
    plan: FixPlan | None = None
    payload: CvePayload | None = None
    error: str | None = None
    rank: int = -1
    notes: list[str] = field(default_factory=list)

    @property
    def actionable(self) -> bool:
        """Something to change, or a bump a human must finish (hashes we could not get)."""
        p = self.payload
        return p is not None and bool(p.edits or p.hash_problems)


@dataclass(frozen=True)
class CampaignOptions:
    db: tuple[str, ...]
    model: str = DEFAULT_MODEL
    then: str | None = None  # escalation model for failed verification
    concurrency: int = 4
    budget_usd: float | None = None
    sandbox: Literal["bwrap", "local", "docker"] = "bwrap"
    unsafe_local: bool = False
    require_approval: bool = False
    test_command: str | None = None
    use_index: bool = True  # ask PyPI for releases (no pre-releases, no yanked)
    index_url: str | None = None  # PyPI's JSON API or a mirror (default $CORRAL_PYPI_URL)
    install: Literal["wheelhouse", "index"] = "wheelhouse"
    wheel_cache: Path | None = None
    max_attempts: int = 2
    name: str | None = None


def resolve_repos(specs: Sequence[str]) -> list[RepoEntry]:
    """GLOBs of directories, or FILEs listing one repo per line (`PATH [test: CMD]`)."""
    found: dict[Path, RepoEntry] = {}
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_file():
            for raw in p.read_text().splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                path_text, _, test = line.partition(" test:")
                repo = (p.parent / path_text.strip()).expanduser().resolve()
                if not repo.is_dir():
                    raise ConfigError(f"{p}: {path_text.strip()!r} is not a directory")
                found.setdefault(repo, RepoEntry(repo, test.strip() or None))
            continue
        matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
        dirs = [Path(m).resolve() for m in matches if Path(m).is_dir()]
        if not dirs:
            raise ConfigError(f"--repos {spec!r} matches no directory")
        for d in dirs:
            found.setdefault(d, RepoEntry(d))
    return list(found.values())


def _key(path: Path, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.name).strip("-.")[:80] or "repo"
    key, n = base, 2
    while key in used:
        key, n = f"{base}-{n}", n + 1
    used.add(key)
    return key


async def triage(
    entries: Sequence[RepoEntry], source: AdvisorySource, opts: CampaignOptions
) -> list[Triaged]:
    """Scan and plan every repo, prepare wheelhouses; worst severity first."""
    used: set[str] = set()
    out = [Triaged(e, _key(e.path, used)) for e in entries]
    index = PyPIIndex(opts.index_url) if opts.use_index else None
    try:
        for t in out:
            try:
                t.report = await scan_repo(t.entry.path, source)
                t.plan = await plan_fixes(t.report, source, index)
            except (OSError, ValueError) as e:
                t.error = f"cannot scan: {e}"
                continue
            t.rank = max((f.severity.rank for f in t.report.findings if f.severity), default=-1)
            if t.plan.upgrades:
                try:
                    t.payload = await _payload(t, opts)
                except ConfigError as e:  # this repo only (a planted `.corral` link)
                    t.error = f"cannot prepare: {e}"
    finally:
        if index is not None:
            await index.aclose()
    out.sort(key=lambda t: (-t.rank, -len(t.report.findings) if t.report else 0, t.key))
    return out


async def _payload(t: Triaged, opts: CampaignOptions) -> CvePayload:
    assert t.report is not None and t.plan is not None
    root = t.entry.path
    reqs = requirement_files(t.report)
    found, plan = await _digests(root, t.plan, opts)
    house: Wheelhouse | None = None
    if opts.install == "wheelhouse":
        house = await prepare(root, pins_for(root, plan), cache=opts.wheel_cache)
        found = await check_wheelhouse(found, house.path)
    made = build_edits(root, t.plan, found)
    checks = sorted({(e.file, e.package) for e in made.edits if e.lock and e.hashes})
    if checks:
        ignore_corral_dir(root)
        shutil.copyfile(Path(lockreqs.__file__), root / LOCKREQS)
    if house is not None:  # (`prepare` made the ignored .corral/)
        shutil.copyfile(Path(depcheck.__file__), root / DEPCHECK)
    targets = sorted({(u.package, a.id) for u in t.plan.upgrades for a in u.advisories})
    return CvePayload(
        repo=str(root),
        plan=t.plan,
        edits=tuple(made.edits),
        problems=tuple(made.problems),
        tests=detect_tests(root, override=t.entry.test_command or opts.test_command),
        requirement_files=reqs,
        hashed_requirements=hashed_requirement_files(root, reqs),
        hash_checks=tuple(checks),
        hash_problems=hash_problems(made.hash_gaps),
        install=opts.install,
        wheel_problems=tuple(house.problems if house else ()),
        targets=tuple(targets),
        known=tuple(sorted({(f.package, f.advisory) for f in t.report.findings})),
        manifests=t.report.manifests,
        db=opts.db,
        findings=len(t.report.findings),
    )


async def _digests(root: Path, plan: FixPlan, opts: CampaignOptions) -> tuple[Found, FixPlan]:
    """The new releases' digests for every bump into a hash-carrying entry, and the plan
    the wheelhouse should follow: bumps whose hashes cannot be had stay at the old pin."""
    wanted = {(g.package, g.version) for g in build_edits(root, plan).hash_gaps}
    if not wanted:
        return {}, plan
    async with PyPIIndex(opts.index_url) as index:
        found = await release_digests(wanted, index)
    failed = {k for k, v in found.items() if isinstance(v, str)}
    kept = tuple(u for u in plan.upgrades if (u.package, u.to_version) not in failed)
    return found, plan.model_copy(update={"upgrades": kept})


def hash_problems(gaps: Sequence[HashGap]) -> tuple[str, ...]:
    """One line per package whose new hashes could not be had (its pin is left as is)."""
    by: dict[tuple[str, str], list[HashGap]] = {}
    for g in gaps:
        by.setdefault((g.package, g.version), []).append(g)
    return tuple(
        f"{name} {version}: hashes could not be refreshed ({gs[0].why}); "
        f"left unchanged at {', '.join(f'{g.file}:{g.line}' for g in gs)}"
        for (name, version), gs in sorted(by.items())
    )


def campaign_spec(triaged: Sequence[Triaged], opts: CampaignOptions) -> CampaignSpec | None:
    """One task per actionable repo, grouping all its findings into one PR."""
    register()
    model = opts.model
    if opts.then and model.startswith(DEFAULT_MODEL) and "?" not in model:
        model = f"{model}?then={opts.then}"
    tasks = []
    for t in triaged:
        if not t.actionable:
            continue
        assert t.payload is not None
        digest = hashlib.sha256(t.payload.plan.model_dump_json().encode()).hexdigest()[:12]
        tasks.append(
            TaskSpec(
                id=t.key,
                repo=str(t.entry.path),
                instructions=render_instructions(t.payload),
                model=model,
                kind=KIND,
                labels=("cve", f"severity:{t.rank}"),
                priority=max(t.rank, 0),
                max_attempts=opts.max_attempts,
                max_steps=40,
                command_timeout_s=600,
                sandbox=opts.sandbox,
                require_approval=opts.require_approval,
                unique_key=f"cve:{t.entry.path}:{digest}",
            )
        )
    if not tasks:
        return None
    name = opts.name or f"cve-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return CampaignSpec(
        name=name,
        concurrency=opts.concurrency,
        budget_usd=opts.budget_usd,
        model=model,
        unsafe_local=opts.unsafe_local,
        tasks=tuple(tasks),
    )
