"""Stuck detection: notice an agent that repeats itself instead of making progress.

Rules (thresholds in StuckPolicy):
- the same action with the same observation N times in a row;
- the same action erroring N times in a row: first a nudge, then stuck;
- an A/B/A/B alternation of two action/observation pairs over a window;
- N model turns in a row with no action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from corral.agent.config import StuckPolicy


def action_key(tool: str, args: dict[str, Any]) -> str:
    return tool + ":" + json.dumps(args, sort_keys=True, default=str)


@dataclass(frozen=True)
class Verdict:
    """What the loop should do after a step: nothing, nudge the model, or stop."""

    nudge: str | None = None
    stuck: str | None = None


@dataclass
class StuckDetector:
    policy: StuckPolicy = field(default_factory=StuckPolicy)
    _steps: list[tuple[str, str, bool]] = field(default_factory=list)
    _no_action: int = 0
    _nudged_errors: set[str] = field(default_factory=set)

    def on_no_action(self) -> Verdict:
        self._no_action += 1
        if self._no_action >= self.policy.no_action_turns:
            return Verdict(stuck=f"{self._no_action} model turns in a row without an action")
        return Verdict(
            nudge="Your last reply called no tool. Act with a tool call, "
            "or call `finish` with a message if the task is done."
        )

    def on_step(self, tool: str, args: dict[str, Any], observation: str, is_error: bool) -> Verdict:
        self._no_action = 0
        key = action_key(tool, args)
        self._steps.append((key, observation, is_error))
        p = self.policy
        errors = self._tail_run(lambda s: s[0] == key and s[2])
        if errors >= p.same_action_error:
            if key in self._nudged_errors:
                return Verdict(stuck=f"the same action failed {errors} times: {key[:120]}")
            self._nudged_errors.add(key)
            return Verdict(
                nudge=f"This action has failed {errors} times in a row with the same call. "
                "Read the error, then try a different approach."
            )
        same = self._tail_run(lambda s: s[0] == key and s[1] == observation)
        if same >= p.same_action_same_observation:
            return Verdict(stuck=f"the same action gave the same result {same} times: {key[:120]}")
        if self._alternating():
            return Verdict(
                stuck=f"alternating between two actions for {p.alternation_window} steps"
            )
        return Verdict()

    def _tail_run(self, pred: Any) -> int:
        n = 0
        for s in reversed(self._steps):
            if not pred(s):
                break
            n += 1
        return n

    def _alternating(self) -> bool:
        w = self.policy.alternation_window
        if len(self._steps) < w:
            return False
        tail = [(k, o) for k, o, _ in self._steps[-w:]]
        a, b = tail[0], tail[1]
        if a == b:
            return False
        return all(t == (a if i % 2 == 0 else b) for i, t in enumerate(tail))
