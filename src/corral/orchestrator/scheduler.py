"""Admission: who runs next. Priority within a campaign, weighted fairness between
campaigns and between teams, and the caps (global, per campaign, per team).

A pure function over a snapshot, so it is easy to reason about and to test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.store.rows import CampaignRow, TaskRow


@dataclass
class Snapshot:
    ready: Sequence[TaskRow]
    campaigns: Mapping[str, CampaignRow]
    running_by_campaign: Mapping[str, int] = field(default_factory=dict)
    running_by_team: Mapping[str, int] = field(default_factory=dict)
    # Attempts started so far, per campaign: the "virtual time" of weighted fair sharing.
    served_by_campaign: Mapping[str, int] = field(default_factory=dict)
    team_caps: Mapping[str, int] = field(default_factory=dict)
    team_weights: Mapping[str, float] = field(default_factory=dict)


def pick(snapshot: Snapshot, free_slots: int) -> list[TaskRow]:
    """Choose up to `free_slots` ready tasks.

    Each pick goes to the team with the least weighted service, then to that team's
    campaign with the least weighted service, then to that campaign's best task
    (highest priority, then oldest).
    """
    queues: dict[str, list[TaskRow]] = defaultdict(list)
    for t in snapshot.ready:
        if t.campaign_id in snapshot.campaigns:
            queues[t.campaign_id].append(t)
    for q in queues.values():
        q.sort(key=lambda t: (-t.priority, t.created_at, t.key))
    run_c = dict(snapshot.running_by_campaign)
    run_t = dict(snapshot.running_by_team)
    served_c = {c: float(snapshot.served_by_campaign.get(c, 0)) for c in queues}
    served_t: dict[str, float] = defaultdict(float)
    for cid, n in snapshot.served_by_campaign.items():
        if cid in snapshot.campaigns:
            served_t[snapshot.campaigns[cid].team] += n
    picks: list[TaskRow] = []
    while len(picks) < free_slots:
        open_c = [c for c, q in queues.items() if q and _has_room(c, snapshot, run_c, run_t)]
        if not open_c:
            break
        teams = {snapshot.campaigns[c].team for c in open_c}
        team = min(teams, key=lambda tm: (served_t[tm] / snapshot.team_weights.get(tm, 1.0), tm))
        cid = min(
            (c for c in open_c if snapshot.campaigns[c].team == team),
            key=lambda c: (served_c[c] / snapshot.campaigns[c].weight, c),
        )
        task = queues[cid].pop(0)
        picks.append(task)
        run_c[cid] = run_c.get(cid, 0) + 1
        run_t[team] = run_t.get(team, 0) + 1
        served_c[cid] += 1
        served_t[team] += 1
    return picks


def _has_room(cid: str, snap: Snapshot, run_c: Mapping[str, int], run_t: Mapping[str, int]) -> bool:
    camp = snap.campaigns[cid]
    if camp.concurrency is not None and run_c.get(cid, 0) >= camp.concurrency:
        return False
    cap = snap.team_caps.get(camp.team)
    return not (cap is not None and run_t.get(camp.team, 0) >= cap)
