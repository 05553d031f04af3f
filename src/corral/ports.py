"""Every pluggable interface, as a small Protocol. A backend is a class that fits one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from corral.domain import Completion, Event, ExecResult, Message, ToolResult, ToolSpec


@runtime_checkable
class Model(Protocol):
    """An LLM: messages and tool schemas in, one completion out."""

    name: str
    context_window: int

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> Completion: ...


@runtime_checkable
class Sandbox(Protocol):
    """A disposable place to run commands against a private copy of a repo.

    Paths given to `read_file`/`write_file` are relative to the workspace (or absolute
    under `workdir`); anything that resolves outside the workspace raises SandboxError.
    """

    @property
    def kind(self) -> str: ...

    @property
    def workdir(self) -> str:
        """The workspace path as seen by commands inside the sandbox."""
        ...

    @property
    def workspace(self) -> Path:
        """The same directory as seen by the host."""
        ...

    async def start(self) -> None: ...

    async def exec(self, command: str, timeout: float) -> ExecResult: ...

    async def read_file(self, path: str) -> bytes: ...

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def diff(self) -> str:
        """Every change in the workspace since start, new files included (a git patch)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Tool(Protocol):
    """Something the agent can do: a schema for the model and a `run` for the loop."""

    spec: ToolSpec

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult: ...


@runtime_checkable
class EventSink(Protocol):
    """Where an attempt's events go, in order, before the loop acts on them."""

    async def append(self, event: Event) -> None: ...

    async def append_many(self, events: Sequence[Event]) -> None:
        """Several events in one durable write (a model turn and the actions it asks for)."""
        ...


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float: ...
