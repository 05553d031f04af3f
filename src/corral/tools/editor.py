"""The `editor` tool: view, create, str_replace, insert and undo on workspace files.

All file access goes through `sandbox.read_file`/`write_file` (which refuse escapes);
the few things the Sandbox protocol has no call for (listing a directory, making parent
directories, deleting a file on undo) run as small commands inside the sandbox behind a
symlink-resolving "is it inside the workspace" check. The undo history lives in the tool
instance, which lives for one attempt.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from corral.domain import SandboxError, ToolError, ToolResult
from corral.ports import Sandbox
from corral.tools.base import (
    OUTSIDE_MARKER,
    Args,
    inside_workspace_sh,
    parse_args,
    tool_spec,
    workspace_path,
)
from corral.tools.text import (
    decode_text,
    fmt_lines,
    fuzzy_lines,
    match_lines,
    snippet,
    view_text,
)

Command = Literal["view", "create", "str_replace", "insert", "undo"]

# Which optional arguments each command needs (required, allowed).
_NEEDS: dict[str, tuple[set[str], set[str]]] = {
    "view": (set(), {"view_range"}),
    "create": ({"content"}, set()),
    "str_replace": ({"old", "new"}, set()),
    "insert": ({"line", "text"}, set()),
    "undo": (set(), set()),
}
MAX_HISTORY = 50
MAX_LIST_ENTRIES = 300
_SKIP_DIRS = ("node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".tox")

DESCRIPTION = """\
View, create and edit UTF-8 text files in the workspace. `path` is relative to the \
workspace root (or absolute inside it).
Commands:
- view: show a file with line numbers; `view_range` [start, end] shows only those lines \
(end -1 = to the end of the file). A directory is listed two levels deep.
- create: write `content` to `path`, creating parent directories. An existing file is \
overwritten (undo restores it).
- str_replace: replace `old` with `new`. `old` must match the file exactly once, \
including whitespace and indentation; add neighbouring lines to make it unique. \
`new` "" deletes it.
- insert: insert `text` after line `line` (0 = at the top).
- undo: revert the last create/str_replace/insert on `path`.
After an edit the changed lines are shown with line numbers; check them."""


class EditorArgs(Args):
    command: Command = Field(description="What to do.")
    path: str = Field(description="File or directory, relative to the workspace root.")
    view_range: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="view: [start, end] line numbers, 1-based, inclusive; end -1 = to the end.",
    )
    content: str | None = Field(default=None, description="create: the whole file content.")
    old: str | None = Field(default=None, description="str_replace: exact text to replace.")
    new: str | None = Field(default=None, description="str_replace: the replacement text.")
    line: int | None = Field(
        default=None, ge=0, description="insert: insert after this line (0 = at the top)."
    )
    text: str | None = Field(default=None, description="insert: the text to insert.")


class EditorTool:
    """A line-numbered file editor with exact-match replacement and per-file undo."""

    name = "editor"

    def __init__(self) -> None:
        self.spec = tool_spec(self.name, DESCRIPTION, EditorArgs)
        self._history: dict[str, list[bytes | None]] = {}

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, EditorArgs, args)
        required, allowed = _NEEDS[a.command]
        given = {
            k
            for k in ("view_range", "content", "old", "new", "line", "text")
            if getattr(a, k) is not None
        }
        for name in sorted(required - given):
            raise ToolError(f"editor {a.command}: missing required argument '{name}'")
        for name in sorted(given - required - allowed):
            raise ToolError(
                f"editor {a.command}: argument '{name}' is not used by {a.command}; "
                f"{a.command} takes: {', '.join(['path', *sorted(required | allowed)])}"
            )
        rel = workspace_path(sandbox, a.path)
        if a.command == "view":
            return await self._view(sandbox, rel, a.view_range)
        if a.command == "create":
            assert a.content is not None
            return await self._create(sandbox, rel, a.content)
        if a.command == "str_replace":
            assert a.old is not None and a.new is not None
            return await self._replace(sandbox, rel, a.old, a.new)
        if a.command == "insert":
            assert a.line is not None and a.text is not None
            return await self._insert(sandbox, rel, a.line, a.text)
        return await self._undo(sandbox, rel)

    # -- commands ------------------------------------------------------------------

    async def _view(self, sandbox: Sandbox, rel: str, view_range: list[int] | None) -> ToolResult:
        try:
            data = await sandbox.read_file(rel)
        except (SandboxError, OSError) as exc:
            kind, listing = await self._probe(sandbox, rel, list_dir=True)
            if kind == "dir":
                if view_range is not None:
                    raise ToolError(
                        f"{rel} is a directory; view_range only applies to files"
                    ) from None
                return ToolResult(output=listing)
            raise _read_error(rel, kind, exc) from None
        return ToolResult(output=view_text(decode_text(data, rel), rel, view_range))

    async def _create(self, sandbox: Sandbox, rel: str, content: str) -> ToolResult:
        try:
            old: bytes | None = await sandbox.read_file(rel)
        except (SandboxError, OSError) as exc:
            kind, _ = await self._probe(sandbox, rel)
            if kind == "dir":
                raise ToolError(f"{rel} is a directory; give a file path") from None
            if kind == "outside":
                raise _read_error(rel, kind, exc) from None
            old = None
        data = content.encode("utf-8")
        try:
            await sandbox.write_file(rel, data)
        except (SandboxError, OSError) as exc:
            if not await self._make_parent(sandbox, rel):
                raise ToolError(f"cannot write {rel}: {exc}") from None
            await sandbox.write_file(rel, data)
        self._remember(rel, old)
        lines = len(content.splitlines())
        if old is None:
            return ToolResult(output=f"Created {rel} ({lines} lines).")
        was = len(old.splitlines())
        return ToolResult(
            output=f"Overwrote {rel} ({lines} lines; it had {was}; undo restores the old content)."
        )

    async def _replace(self, sandbox: Sandbox, rel: str, old: str, new: str) -> ToolResult:
        if not old:
            raise ToolError("editor str_replace: argument 'old' must not be empty")
        if old == new:
            raise ToolError("editor str_replace: 'old' and 'new' are identical; nothing to do")
        raw, text, crlf = await self._load(sandbox, rel)
        hits = match_lines(text, old)
        if not hits:
            near = fuzzy_lines(text, old)
            hint = (
                f" It would match at line {fmt_lines(near)} if whitespace were ignored: "
                "copy the exact text (indentation, tabs, line breaks) from a view."
                if near
                else " View the file and copy the text exactly."
            )
            raise ToolError(f"no match for 'old' in {rel}.{hint}")
        if len(hits) > 1:
            raise ToolError(
                f"'old' matches {len(hits)} times in {rel} (at lines {fmt_lines(hits)}); "
                "it must match exactly once: include more surrounding lines to make it unique"
            )
        updated = text.replace(old, new, 1)
        await self._save(sandbox, rel, raw, updated, crlf)
        first = hits[0]
        last = first + new.count("\n") - (1 if new.endswith("\n") else 0)
        return ToolResult(
            output=f"Edited {rel}: replaced 1 occurrence at line {first}. Now:\n"
            + snippet(updated, first, last)
        )

    async def _insert(self, sandbox: Sandbox, rel: str, line: int, text: str) -> ToolResult:
        raw, current, crlf = await self._load(sandbox, rel)
        lines = current.splitlines(keepends=True)
        if line > len(lines):
            raise ToolError(
                f"editor insert: line {line} is out of range: {rel} has {len(lines)} lines "
                f"(use 0 to {len(lines)})"
            )
        if lines and line == len(lines) and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        block = text if text.endswith("\n") else text + "\n"
        lines[line:line] = [block]
        updated = "".join(lines)
        await self._save(sandbox, rel, raw, updated, crlf)
        added = block.count("\n")
        return ToolResult(
            output=f"Inserted {added} line(s) after line {line} of {rel}. Now:\n"
            + snippet(updated, line + 1, line + added)
        )

    async def _undo(self, sandbox: Sandbox, rel: str) -> ToolResult:
        stack = self._history.get(rel)
        if not stack:
            raise ToolError(f"no edit of {rel} to undo")
        previous = stack.pop()
        if previous is None:
            out = await sandbox.exec(
                f"({inside_workspace_sh(sandbox, rel)} && rm -f -- {shlex.quote(rel)})", 30.0
            )
            if out.exit_code != 0:
                stack.append(previous)
                raise ToolError(f"could not remove {rel}: {out.output.strip()}")
            return ToolResult(output=f"Undid the create of {rel}: the file is removed.")
        await sandbox.write_file(rel, previous)
        left = len(stack)
        return ToolResult(
            output=f"Reverted the last edit of {rel} ({left} earlier edit(s) can be undone)."
        )

    # -- helpers -------------------------------------------------------------------

    def _remember(self, rel: str, before: bytes | None) -> None:
        stack = self._history.setdefault(rel, [])
        stack.append(before)
        del stack[:-MAX_HISTORY]

    async def _load(self, sandbox: Sandbox, rel: str) -> tuple[bytes, str, bool]:
        """Read a file for editing: raw bytes, text with LF line ends, was it CRLF."""
        try:
            raw = await sandbox.read_file(rel)
        except (SandboxError, OSError) as exc:
            kind, _ = await self._probe(sandbox, rel)
            raise _read_error(rel, kind, exc) from None
        text = decode_text(raw, rel)
        crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        return raw, (text.replace("\r\n", "\n") if crlf else text), crlf

    async def _save(self, sandbox: Sandbox, rel: str, raw: bytes, text: str, crlf: bool) -> None:
        data = (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")
        await sandbox.write_file(rel, data)
        self._remember(rel, raw)

    async def _probe(
        self, sandbox: Sandbox, rel: str, *, list_dir: bool = False
    ) -> tuple[str, str]:
        """Ask the sandbox what `rel` is: 'dir' (with a listing), 'file', 'missing' or
        'outside' (resolving symlinks); used only after a read failed."""
        q = shlex.quote(rel)
        listing = ""
        if list_dir:
            skip = " -o ".join(f"-name {shlex.quote(d)}" for d in _SKIP_DIRS)
            listing = (
                f"find {q} -mindepth 1 -maxdepth 2 \\( -name .git -prune \\) -o "
                f"\\( -type d \\( {skip} \\) -prune -printf '%P/ (not listed)\\n' \\) -o "
                f"\\( -type d -printf '%P/\\n' \\) -o -printf '%P\\n' | LC_ALL=C sort; "
            )
        cmd = (
            f"({inside_workspace_sh(sandbox, rel)} && if [ -d {q} ]; then echo @@corral-dir; "
            f"{listing}elif [ -e {q} ]; then echo @@corral-file; else echo @@corral-missing; fi)"
        )
        res = await sandbox.exec(cmd, 30.0)
        first, _, rest = res.output.partition("\n")
        if OUTSIDE_MARKER in first:
            return "outside", ""
        kind = first.strip().removeprefix("@@corral-") or "missing"
        if kind != "dir" or not list_dir:
            return kind, ""
        entries = [e for e in rest.splitlines() if e]
        shown = entries[:MAX_LIST_ENTRIES]
        more = len(entries) - len(shown)
        where = "The workspace root" if rel == "." else f"{rel}/"
        head = f"{where} (directory; entries up to 2 levels deep, .git skipped):"
        body = "\n".join(shown) if shown else "(empty directory)"
        tail = f"\n[{more} more entries not shown; view a subdirectory]" if more else ""
        return "dir", f"{head}\n{body}{tail}"

    async def _make_parent(self, sandbox: Sandbox, rel: str) -> bool:
        """Create the parent directories of `rel` inside the workspace; False if none
        were missing (so the write failed for another reason) or it was refused."""
        parent = rel.rpartition("/")[0]
        if not parent:
            return False
        q = shlex.quote(parent)
        res = await sandbox.exec(
            f"({inside_workspace_sh(sandbox, parent)} && if [ -d {q} ]; then echo @@corral-had;"
            f" else mkdir -p -- {q} && echo @@corral-made; fi)",
            30.0,
        )
        return "@@corral-made" in res.output


def _read_error(rel: str, kind: str, exc: Exception) -> ToolError:
    if kind == "missing":
        return ToolError(f"{rel} does not exist (use create to make a new file)")
    if kind == "dir":
        return ToolError(f"{rel} is a directory, not a file")
    if kind == "outside":
        return ToolError(f"{rel} is outside the workspace (refused): {exc}")
    return ToolError(f"cannot read {rel}: {exc}")
