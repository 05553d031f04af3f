"""Decides what runs where: single attempts now; scheduler, leases and retries next."""

from corral.orchestrator.run import ReplayResult, RunResult, replay_attempt, run_task

__all__ = ["ReplayResult", "RunResult", "replay_attempt", "run_task"]
