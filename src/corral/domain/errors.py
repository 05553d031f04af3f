"""One root exception, so callers can catch everything corral raises in one place.

    CorralError
    ├── ConfigError          bad input from a user: spec strings, files, flags (one-line message)
    │   └── UnknownModel     a model spec we cannot resolve
    ├── ModelError           a model call went wrong
    │   ├── ProviderError    the provider answered badly or not at all (retryable)
    │   │   └── RateLimited  still rate limited when the caller's deadline passed
    │   ├── BudgetExceeded   a call could not reserve its worst-case cost (not retryable)
    │   └── ScriptExhausted  a ScriptedModel has no more turns
    ├── SandboxError         a sandbox could not start or refused an operation
    │   └── SandboxCrashed   the sandbox died under a running attempt (retryable)
    ├── ToolError            a tool call was invalid; becomes an observation, never a crash
    └── StoreError           the event store failed

Control-flow signals (Finished, LimitExceeded, Stuck) are not errors and live in
`corral.agent.signals`.
"""

from __future__ import annotations

from collections.abc import Mapping


class CorralError(Exception):
    """Root of every error corral raises."""


class ConfigError(CorralError):
    """Bad user input; the message is one line naming what was wrong."""


class UnknownModel(ConfigError):
    """A model spec string that no adapter understands."""


class ModelError(CorralError):
    """A model call failed."""


class ProviderError(ModelError):
    """The provider failed (HTTP error, timeout, malformed answer); usually retryable."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        # The response headers (lower-cased names), so the gateway can read
        # `x-ratelimit-*` from a 429 as well as from a success.
        self.headers: Mapping[str, str] = headers or {}


class RateLimited(ProviderError):
    """The gateway kept retrying a 429 (or waiting for capacity) until the deadline passed."""


class BudgetExceeded(ModelError):
    """A call could not reserve its worst-case cost against every budget of its scope.

    A ModelError so the agent loop ends the attempt cleanly; an orchestrator should not
    retry it (the budget will not grow by itself).
    """

    def __init__(self, message: str, *, scope_key: str = "", limit_usd: float = 0.0):
        super().__init__(message)
        self.scope_key = scope_key
        self.limit_usd = limit_usd


class ScriptExhausted(ModelError):
    """A ScriptedModel was asked for a turn its script does not have."""


class SandboxError(CorralError):
    """A sandbox failed to start, crashed, or refused an operation."""


class ToolError(CorralError):
    """A tool call the model made was invalid; the model sees this message."""


class StoreError(CorralError):
    """The event store failed."""


class SandboxCrashed(SandboxError):
    """The sandbox itself died (killed from outside, its shell gone): the attempt cannot go
    on in it, so the loop stops and the orchestrator retries the attempt."""
