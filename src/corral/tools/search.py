"""The `search` tool: a regex search through the workspace, run inside the sandbox.

grep runs in a subshell (so the persistent shell's cwd and options are untouched) and
awk caps the matches there, so a pattern matching a million lines costs one short answer.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from corral.domain import ToolError, ToolResult
from corral.ports import Sandbox
from corral.tools.base import (
    OUTSIDE_MARKER,
    Args,
    inside_workspace_sh,
    parse_args,
    tool_spec,
    workspace_path,
)

MAX_MATCHES = 100
MAX_LINE = 240
SKIP_DIRS = (".git", "node_modules", ".venv", "__pycache__")

# Marker lines let one exec carry matches, the match count, grep's errors and its status.
_AWK = r"""
/^@@corral-rc=/ { rc = substr($0, 13); next }
/^grep: / { err = err $0 "\n"; next }
{ n++; if (n <= max) { if (length($0) > w) $0 = substr($0, 1, w) " ...[cut]"; print } }
END { print "@@corral-total=" (n + 0); printf "%s", err; print "@@corral-rc=" rc }
"""


class SearchArgs(Args):
    pattern: str = Field(description="Extended regular expression (grep -E syntax).")
    path: str = Field(
        default=".", description="File or directory to search, relative to the workspace."
    )


class SearchTool:
    """Finds lines matching a regex, with file and line number, capped."""

    name = "search"

    def __init__(self, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.spec = tool_spec(
            self.name,
            (
                "Search file contents with an extended regular expression (grep -E syntax; "
                "case-sensitive). Searches `path` (default: the whole workspace) recursively, "
                f"skipping binary files and {', '.join(SKIP_DIRS)}. Returns `file:line:text` "
                f"for up to {MAX_MATCHES} matches and says how many more there are."
            ),
            SearchArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, SearchArgs, args)
        if not a.pattern:
            raise ToolError("search: argument 'pattern' must not be empty")
        rel = workspace_path(sandbox, a.path)
        excludes = " ".join(f"--exclude-dir={shlex.quote(d)}" for d in SKIP_DIRS)
        grep = (
            f"grep -rnHIE {excludes} -- {shlex.quote(a.pattern)} {shlex.quote(rel)} 2>&1; "
            'echo "@@corral-rc=$?"'
        )
        cmd = (
            f"({inside_workspace_sh(sandbox, rel)} && ({grep}) | "
            f"awk -v max={MAX_MATCHES} -v w={MAX_LINE} {shlex.quote(_AWK)})"
        )
        res = await sandbox.exec(cmd, self.timeout)
        if res.timed_out:
            raise ToolError(f"search timed out after {self.timeout:g} s; narrow it with `path`")
        if OUTSIDE_MARKER in res.output:
            raise ToolError(f"path {a.path!r} is outside the workspace (refused)")
        matches, total, errors, rc = _parse(res.output)
        if rc == 2 and not matches:
            detail = "; ".join(errors) or res.output.strip()[:300]
            raise ToolError(f"search failed (bad regex or path?): {detail}")
        if rc == 1 or not matches:
            where = "the workspace" if rel == "." else rel
            return ToolResult(output=f"No matches for {a.pattern!r} in {where}.", exit_code=1)
        lines = [m.removeprefix("./") for m in matches]
        more = total - len(lines)
        note = (
            f"\n[{more} more matches not shown ({total} in all); narrow the pattern or path]"
            if more > 0
            else ""
        )
        warn = ("\n[grep: " + "; ".join(errors) + "]") if errors else ""
        head = f"{total} match{'es' if total != 1 else ''} for {a.pattern!r}:\n"
        return ToolResult(
            output=head + "\n".join(lines) + note + warn, exit_code=0, truncated=more > 0
        )


def _parse(output: str) -> tuple[list[str], int, list[str], int]:
    """Split the awk output into matches, total count, grep messages, grep's status."""
    matches: list[str] = []
    errors: list[str] = []
    total, rc = 0, 2
    for line in output.splitlines():
        if line.startswith("@@corral-total="):
            total = int(line.partition("=")[2] or 0)
        elif line.startswith("@@corral-rc="):
            value = line.partition("=")[2].strip()
            rc = int(value) if value.isdigit() else 2
        elif line.startswith("grep: "):
            errors.append(line.removeprefix("grep: "))
        else:
            matches.append(line)
    if "@@corral-total=" not in output:
        raise ToolError(f"search failed: {output.strip()[:300] or 'no output from grep'}")
    return matches, total, errors, rc
