"""One root exception, so callers can catch everything corral raises in one place.

    CorralError
    ├── ConfigError          bad input from a user: spec strings, files, flags (one-line message)
    │   └── UnknownModel     a model spec we cannot resolve
    ├── ModelError           a model call went wrong
    │   ├── ProviderError    the provider answered badly or not at all (retryable)
    │   └── ScriptExhausted  a ScriptedModel has no more turns
    ├── SandboxError         a sandbox could not start or broke (retryable)
    ├── ToolError            a tool call was invalid; becomes an observation, never a crash
    └── StoreError           the event store failed

Control-flow signals (Finished, LimitExceeded, Stuck) are not errors and live in
`corral.agent.signals`.
"""

from __future__ import annotations


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
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ScriptExhausted(ModelError):
    """A ScriptedModel was asked for a turn its script does not have."""


class SandboxError(CorralError):
    """A sandbox failed to start, crashed, or refused an operation."""


class ToolError(CorralError):
    """A tool call the model made was invalid; the model sees this message."""


class StoreError(CorralError):
    """The event store failed."""
