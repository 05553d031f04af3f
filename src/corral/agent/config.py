"""Agent definition: immutable config. Run state lives in the loop and the event log."""

from __future__ import annotations

from pydantic import Field

from corral.domain import Frozen


class StuckPolicy(Frozen):
    """Thresholds of the stuck detector (see `corral.agent.stuck`)."""

    same_action_same_observation: int = 4
    same_action_error: int = 3
    alternation_window: int = 6
    no_action_turns: int = 3


class AgentLimits(Frozen):
    max_steps: int = Field(default=50, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_wall_s: float = Field(default=1800.0, gt=0)
    model_timeout_s: float = Field(default=300.0, gt=0)
    command_timeout_s: float = Field(default=120.0, gt=0)


class AgentConfig(Frozen):
    limits: AgentLimits = AgentLimits()
    stuck: StuckPolicy = StuckPolicy()
    repo_map_tokens: int = Field(default=2000, ge=0)
    # Condense when the estimated prompt passes this fraction of the context window.
    condense_at: float = Field(default=0.75, gt=0, le=1)
    # Turns (assistant message + its tool results) kept verbatim after condensing.
    keep_recent_turns: int = Field(default=6, ge=1)
    system_prompt: str | None = None
