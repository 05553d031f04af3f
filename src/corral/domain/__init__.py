"""Frozen value objects shared by every layer: messages, events, results, errors."""

from corral.domain.errors import (
    ConfigError,
    CorralError,
    ModelError,
    ProviderError,
    SandboxError,
    ScriptExhausted,
    StoreError,
    ToolError,
    UnknownModel,
)
from corral.domain.events import (
    EVENT_ADAPTER,
    ActionTaken,
    AttemptEnded,
    AttemptStarted,
    Condensed,
    Event,
    ModelCalled,
    Nudged,
    Observed,
    RunStatus,
    event_from_json,
    event_to_json,
)
from corral.domain.ids import new_id
from corral.domain.messages import Completion, Frozen, Message, ToolCall, ToolSpec, Usage
from corral.domain.results import ExecResult, ToolResult

__all__ = [
    "EVENT_ADAPTER",
    "ActionTaken",
    "AttemptEnded",
    "AttemptStarted",
    "Completion",
    "Condensed",
    "ConfigError",
    "CorralError",
    "Event",
    "ExecResult",
    "Frozen",
    "Message",
    "ModelCalled",
    "ModelError",
    "Nudged",
    "Observed",
    "ProviderError",
    "RunStatus",
    "SandboxError",
    "ScriptExhausted",
    "StoreError",
    "ToolCall",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "UnknownModel",
    "Usage",
    "event_from_json",
    "event_to_json",
    "new_id",
]
