"""Pure text helpers for the editor: decoding, numbered views, snippets, fuzzy hints."""

from __future__ import annotations

import re

from corral.domain import ToolError

MAX_VIEW_LINES = 400
MAX_VIEW_CHARS = 24_000
MAX_LINE_CHARS = 2_000
SNIPPET_CONTEXT = 4


def decode_text(data: bytes, shown: str) -> str:
    """Decode a file as UTF-8 text, refusing binary content with a clear message."""
    if b"\x00" in data[:8192]:
        raise ToolError(f"{shown} is a binary file; the editor only handles text files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(
            f"{shown} is not UTF-8 text (invalid byte at offset {exc.start}); "
            "the editor only handles UTF-8 text files"
        ) from None


def numbered(lines: list[str], first: int) -> str:
    """cat -n style: right-aligned line number, a tab, the line (long lines cut)."""
    out: list[str] = []
    for i, line in enumerate(lines, start=first):
        body = line.rstrip("\n").rstrip("\r")
        if len(body) > MAX_LINE_CHARS:
            body = body[:MAX_LINE_CHARS] + f" ... [line cut, {len(body)} chars]"
        out.append(f"{i:6}\t{body}")
    return "\n".join(out)


def view_text(text: str, shown: str, view_range: list[int] | None) -> str:
    """A numbered view of `text`, whole or `[start, end]` (end -1 = to the end), capped."""
    lines = text.splitlines(keepends=True)
    n = len(lines)
    if view_range is None:
        start, end = 1, n
    else:
        start, end = view_range
        if n == 0:
            raise ToolError(f"view_range {view_range} is out of range: {shown} is empty")
        if start < 1 or start > n:
            raise ToolError(
                f"view_range start {start} is out of range: {shown} has {n} lines (1-{n})"
            )
        if end == -1:
            end = n
        elif end < start or end > n:
            raise ToolError(
                f"view_range end {end} is out of range: it must be between {start} and "
                f"{n} ({shown} has {n} lines), or -1 for the end of the file"
            )
    if n == 0:
        return f"{shown} is empty."
    shown_lines = lines[start - 1 : end]
    body = numbered(shown_lines, start)
    last = end
    if len(shown_lines) > MAX_VIEW_LINES or len(body) > MAX_VIEW_CHARS:
        shown_lines = shown_lines[:MAX_VIEW_LINES]
        body = numbered(shown_lines, start)
        while len(body) > MAX_VIEW_CHARS and len(shown_lines) > 1:
            shown_lines = shown_lines[: len(shown_lines) // 2]
            body = numbered(shown_lines, start)
        last = start + len(shown_lines) - 1
        body += (
            f"\n[view cut at line {last} of {n}; use view_range [{last + 1}, "
            f"{min(n, last + MAX_VIEW_LINES)}] to see more, or search for what you need]"
        )
    header = (
        f"{shown} (lines {start}-{last} of {n}):"
        if (start, last) != (1, n)
        else (f"{shown} ({n} lines):")
    )
    return header + "\n" + body


def snippet(text: str, first_line: int, last_line: int) -> str:
    """Numbered lines around an edit (1-based, inclusive), so the model can check it."""
    lines = text.splitlines(keepends=True)
    lo = max(1, first_line - SNIPPET_CONTEXT)
    hi = min(len(lines), max(last_line, first_line) + SNIPPET_CONTEXT)
    if not lines:
        return "(the file is now empty)"
    return numbered(lines[lo - 1 : hi], lo)


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1


def match_lines(text: str, needle: str) -> list[int]:
    """Starting line of each non-overlapping exact occurrence of `needle`."""
    found: list[int] = []
    pos = text.find(needle)
    while pos != -1:
        found.append(line_of(text, pos))
        pos = text.find(needle, pos + len(needle))
    return found


def fuzzy_lines(text: str, needle: str) -> list[int]:
    """Lines where `needle` matches if runs of whitespace (indentation, line breaks,
    tabs vs spaces) may differ: the usual reason an exact replace finds nothing."""
    tokens = needle.split()
    if not tokens:
        return []
    pattern = re.compile(r"\s+".join(re.escape(t) for t in tokens))
    return [line_of(text, m.start()) for m in pattern.finditer(text)]


def fmt_lines(lines: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")
