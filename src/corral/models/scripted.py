"""ScriptedModel: a model that plays back a file of turns, for tests and demos.

The whole file is validated when the model is built, so a typo in turn 7 fails before
the agent starts, with one line naming the file, turn, YAML line and field.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from corral.domain import (
    Completion,
    ConfigError,
    Message,
    ScriptExhausted,
    ToolCall,
    ToolSpec,
    Usage,
)
from corral.models.errors import cost_usd
from corral.models.openai_format import one_line

__all__ = ["ScriptedModel", "ScriptedToolCall", "ScriptedTurn", "ScriptedUsage", "load_turns"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScriptedToolCall(_Strict):
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptedUsage(_Strict):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class ScriptedTurn(_Strict):
    """One model turn as written in a script file."""

    thought: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    usage: ScriptedUsage | None = None
    latency: float = Field(default=0.0, ge=0)

    def to_completion(
        self, turn: int, *, model: str = "", price_in: float = 0.0, price_out: float = 0.0
    ) -> Completion:
        """Deterministic ids (`call_<turn>_<i>`) so a replay produces the same events."""
        usage = Usage(**self.usage.model_dump()) if self.usage else Usage()
        return Completion(
            content=self.thought,
            tool_calls=tuple(
                ToolCall(id=f"call_{turn}_{i}", name=c.tool, arguments=dict(c.args))
                for i, c in enumerate(self.tool_calls)
            ),
            usage=usage,
            cost_usd=cost_usd(usage, price_in, price_out),
            model=model,
            latency_s=self.latency,
        )


_TURNS: TypeAdapter[list[ScriptedTurn]] = TypeAdapter(list[ScriptedTurn])


def _node_at(root: yaml.Node | None, loc: Sequence[int | str]) -> yaml.Node | None:
    """Follow a pydantic error location into the YAML node tree, as deep as it goes."""
    node = root
    found = root
    for part in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        else:
            node = None
        if node is None:
            break
        found = node
    return found


def _field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse by extension (JSON for .json, YAML otherwise); also return YAML nodes for lines."""
    where = f"scripted model file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read: {one_line(str(exc))}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{where}: invalid YAML{at}: {one_line(problem)}") from None
    try:  # JSON is (nearly) YAML, so this gives line numbers for both formats
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    return data, root


def load_turns(path: Path) -> list[ScriptedTurn]:
    """Read and validate a script file; any problem is one ConfigError line."""
    data, root = _read(path)
    where = f"scripted model file {path}"
    if data is None:
        raise ConfigError(f"{where} is empty; it needs a list of turns")
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a list of turns, got {type(data).__name__}")
    if not data:
        raise ConfigError(f"{where} has no turns")
    return _validate(data, where, root)


def _validate(data: Any, where: str, root: yaml.Node | None = None) -> list[ScriptedTurn]:
    try:
        return _TURNS.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        turn = loc[0] if loc and isinstance(loc[0], int) else None
        node = _node_at(root, loc)
        line = f" (line {node.start_mark.line + 1})" if node is not None else ""
        field = _field_path(loc[1:]) if turn is not None else _field_path(loc)
        turn_text = f"turn {turn + 1}{line}" if turn is not None else f"script{line}"
        what = f", field '{field}'" if field else ""
        raise ConfigError(f"{where}: {turn_text}{what}: {one_line(err['msg'])}") from None


class ScriptedModel:
    """Plays one scripted turn per `complete` call; records what it was asked.

    `seen` holds the messages of every call, so tests can assert what the model saw.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        price_in_per_mtok: float = 0.0,
        price_out_per_mtok: float = 0.0,
        context_window: int = 200_000,
        _turns: Sequence[ScriptedTurn] | None = None,
    ) -> None:
        self.path = Path(path)
        self.turns: tuple[ScriptedTurn, ...] = tuple(
            _turns if _turns is not None else load_turns(self.path)
        )
        self.name = f"scripted:{path}"
        self.context_window = context_window
        self.price_in_per_mtok = price_in_per_mtok
        self.price_out_per_mtok = price_out_per_mtok
        self.seen: list[tuple[Message, ...]] = []
        self._next = 0

    @classmethod
    def from_turns(
        cls,
        turns: Iterable[ScriptedTurn | Mapping[str, Any]],
        *,
        name: str = "<inline>",
        price_in_per_mtok: float = 0.0,
        price_out_per_mtok: float = 0.0,
        context_window: int = 200_000,
    ) -> ScriptedModel:
        """Build from Python: the same turn shape as the file (dicts or ScriptedTurn)."""
        raw = [t.model_dump() if isinstance(t, ScriptedTurn) else t for t in turns]
        validated = _validate(raw, f"scripted model {name}")
        return cls(
            name,
            price_in_per_mtok=price_in_per_mtok,
            price_out_per_mtok=price_out_per_mtok,
            context_window=context_window,
            _turns=validated,
        )

    @property
    def remaining(self) -> int:
        return len(self.turns) - self._next

    def skip_turns(self, n: int) -> None:
        """A resumed attempt replays its first `n` turns from the log: carry on after them."""
        self._next = min(self._next + n, len(self.turns))

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        # Claim the turn before any await so concurrent callers never share one.
        index = self._next
        if index >= len(self.turns):
            raise ScriptExhausted(
                f"scripted model {self.path} ran out of turns: asked for turn {index + 1}, "
                f"the script has {len(self.turns)}"
            )
        self._next += 1
        self.seen.append(tuple(messages))
        turn = self.turns[index]
        if turn.latency:
            await asyncio.sleep(turn.latency)
        return turn.to_completion(
            index + 1,
            model=self.name,
            price_in=self.price_in_per_mtok,
            price_out=self.price_out_per_mtok,
        )
