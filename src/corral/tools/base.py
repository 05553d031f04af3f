"""Shared plumbing for tools: argument models, one-line argument errors, JSON schemas, paths.

Every tool validates its arguments with a frozen pydantic model (`Args`), so a wrong or
invented argument becomes a `ToolError` whose single line names the argument and what
was expected; the model reads that line and can correct itself.
"""

from __future__ import annotations

import copy
import functools
import posixpath
import shlex
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from corral.domain import ToolError, ToolResult, ToolSpec
from corral.ports import Sandbox

# Arguments other agent frameworks use for the same thing; named in the error so the
# model can fix the call in one step.
ALIASES: dict[str, str] = {
    "old_str": "old",
    "new_str": "new",
    "file_text": "content",
    "insert_line": "line",
    "cmd": "command",
    "query": "pattern",
    "regex": "pattern",
    "file": "path",
    "filename": "path",
}


class Args(BaseModel):
    """Base for tool arguments: immutable, and unknown arguments are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


A = TypeVar("A", bound=Args)


def _describe(prop: Mapping[str, Any]) -> str:
    """A short human description of what a JSON-schema property accepts."""
    if "enum" in prop:
        return "one of " + ", ".join(repr(v) for v in prop["enum"])
    kind = prop.get("type", "value")
    if kind == "array":
        items = prop.get("items", {}).get("type", "value")
        n = prop.get("minItems")
        if n is not None and n == prop.get("maxItems"):
            return f"a list of {n} {items}s"
        return f"a list of {items}s"
    return {"string": "a string", "integer": "an integer", "number": "a number"}.get(
        str(kind), str(kind)
    )


def parse_args(tool: str, model: type[A], args: Mapping[str, Any]) -> A:
    """Validate `args`, or raise a ToolError with one line naming each bad argument."""
    try:
        return model.model_validate(dict(args))
    except ValidationError as exc:
        props = json_schema(model)["properties"]
        problems: list[str] = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"][:1]) or "arguments"
            if err["type"] == "extra_forbidden":
                hint = f" (did you mean '{ALIASES[name]}'?)" if ALIASES.get(name) in props else ""
                problems.append(f"unknown argument '{name}'{hint}; allowed: {', '.join(props)}")
            elif err["type"] == "missing":
                problems.append(
                    f"missing required argument '{name}' ({_describe(props.get(name, {}))})"
                )
            elif name in props:
                got = repr(err.get("input"))[:60]
                problems.append(
                    f"argument '{name}' must be {_describe(props[name])}; got {got} ({err['msg']})"
                )
            else:
                problems.append(f"{err['msg']}")
        raise ToolError(f"{tool}: " + "; ".join(problems)) from None


def _clean(node: Any) -> Any:
    """Drop pydantic's titles and collapse `X | None` so the schema is short for a model."""
    if isinstance(node, dict):
        out = {k: _clean(v) for k, v in node.items() if k != "title"}
        any_of = out.get("anyOf")
        if isinstance(any_of, list):
            rest = [s for s in any_of if s != {"type": "null"}]
            if len(rest) == 1:
                del out["anyOf"]
                out = {**rest[0], **out}
        if out.get("default", 0) is None:
            del out["default"]
        return out
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def json_schema(model: type[Args]) -> dict[str, Any]:
    """The JSON schema a model sees for these arguments (a fresh copy each call)."""
    return copy.deepcopy(_schema(model))


@functools.cache
def _schema(model: type[Args]) -> dict[str, Any]:
    # Built once per class: every attempt builds its tools, and schema generation is costly.
    schema: dict[str, Any] = _clean(model.model_json_schema())
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return schema


@functools.cache
def tool_spec(name: str, description: str, model: type[Args]) -> ToolSpec:
    """One spec object per tool shape, shared by every attempt's tools: the gateway
    encodes a tool set once per set of spec objects, and a fleet builds thousands of
    identical sets. Nothing may change its schema in place."""
    return ToolSpec(name=name, description=description, parameters=json_schema(model))


def error_result(message: str) -> ToolResult:
    """An observation telling the model its call failed and why."""
    return ToolResult(output=f"ERROR: {message}", is_error=True)


def workspace_path(sandbox: Sandbox, path: str) -> str:
    """Normalise `path` to a workspace-relative POSIX path, refusing anything outside.

    Symlinks are not resolved here (the sandbox does that when it opens the file);
    this catches `..` and foreign absolute paths early with a clear message.
    """
    raw = path.strip()
    if not raw:
        raise ToolError("path must not be empty")
    root = posixpath.normpath(sandbox.workdir)
    if raw.startswith("/"):
        norm = posixpath.normpath(raw)
        if norm != root and not norm.startswith(root.rstrip("/") + "/"):
            raise ToolError(
                f"path {path!r} is outside the workspace {root}; "
                "use a path relative to the workspace"
            )
        rel = posixpath.relpath(norm, root)
    else:
        rel = posixpath.normpath(raw)
    if rel == ".." or rel.startswith("../"):
        raise ToolError(f"path {path!r} leads outside the workspace; '..' may not escape it")
    return rel


def inside_workspace_sh(sandbox: Sandbox, rel: str) -> str:
    """Shell that `cd`s to the workspace (in a subshell) and refuses `rel` if, with
    symlinks resolved, it lies outside; prints a marker line instead of running on."""
    root = shlex.quote(sandbox.workdir)
    q = shlex.quote(rel)
    return (
        f"cd {root} && r=$(realpath -m -- {root}) && p=$(realpath -m -- {q}) && "
        f'case "$p" in "$r"|"$r"/*) true;; *) echo "@@corral-outside"; false;; esac'
    )


OUTSIDE_MARKER = "@@corral-outside"
