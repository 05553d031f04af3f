"""Secrets in a diff: where one was added (so delivery can refuse it and say where), and
putting back redacted lines the repository itself holds (so an approved diff, stored
redacted, still applies).

The diff is the change corral would commit, so it is never silently altered: a diff that
*adds* a secret value or token shape is not delivered at all, and only lines the
repository already had (context and removed lines) are restored, each checked against
what the stored copy shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corral.orchestrator.policy import binary_patch
from corral.orchestrator.policy.redact import BINARY_MARK, Redactor

MARK = "[REDACTED:"
_KIND = re.compile(r"\[REDACTED:([^\]]+)\]")
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")  # lines as git counts them (\r stays in a line)
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class _Line:
    text: str  # as in the diff, line ending included
    kind: str  # header, add, del, ctx, other ("\ No newline at end of file")
    old: str | None  # the file before, workspace-relative
    new: str | None  # ... and after
    old_no: int  # 1-based line in the old file (del, ctx)
    new_no: int  # ... in the new file (add, ctx)

    @property
    def body(self) -> str:
        return self.text.removesuffix("\n")[1:]


def _path(raw: str, prefix: str) -> str | None:
    p = raw.split("\t", 1)[0].strip().strip('"')
    if p == "/dev/null":
        return None
    return p[len(prefix) :] if p.startswith(prefix) else p


def _walk(diff: str) -> Iterator[_Line]:
    """The lines of a unified (git) diff, each with its file and line numbers."""
    old = new = None
    o = n = left_old = left_new = 0
    for text in _LINE.findall(diff):
        line = text.removesuffix("\n")
        if left_old <= 0 and left_new <= 0:
            if line.startswith("--- "):
                old = _path(line[4:], "a/")
            elif line.startswith("+++ "):
                new = _path(line[4:], "b/")
            elif m := _HUNK.match(line):
                o, n = int(m[1]), int(m[3])
                left_old, left_new = int(m[2] or "1"), int(m[4] or "1")
            yield _Line(text, "header", old, new, 0, 0)
            continue
        tag = line[:1]
        if tag == "+":
            yield _Line(text, "add", old, new, 0, n)
            n, left_new = n + 1, left_new - 1
        elif tag == "-":
            yield _Line(text, "del", old, new, o, 0)
            o, left_old = o + 1, left_old - 1
        elif tag == " " or not line:
            yield _Line(text, "ctx", old, new, o, n)
            o, n, left_old, left_new = o + 1, n + 1, left_old - 1, left_new - 1
        else:
            yield _Line(text, "other", old, new, 0, 0)


def added_secret(diff: str, redactor: Redactor, *, redacted: bool = False) -> str | None:
    """`FILE:LINE (kind)` of the first added line holding a secret value or token shape
    (or, with `redacted`, text already redacted, as in a stored copy); None if none."""
    if not redactor.finds(diff) and not (redacted and MARK in diff):
        return None  # the common case: one search, no walk
    for hunk in binary_patch.hunks(diff):
        if hunk.forward and redactor.hides(hunk):
            return f"{_binary_path(diff, hunk.start)} (binary)"
    if redacted and BINARY_MARK in diff:
        return f"{_binary_path(diff, diff.index(BINARY_MARK))} (binary)"
    for line in _walk(diff):
        if line.kind != "add":
            continue
        body = line.body
        shown = redactor.redact(body)
        if shown != body or (redacted and MARK in body):
            kind = _KIND.search(shown)
            return f"{line.new}:{line.new_no} ({kind[1] if kind else 'secret'})"
    return None


def _binary_path(diff: str, at: int) -> str:
    """The file of the binary hunk at `at` (its `diff --git a/X b/X` line: X)."""
    head = diff.rfind("diff --git ", 0, at)
    line = diff[head : diff.find("\n", head)] if head != -1 else ""
    _, sep, new = line.rpartition(" b/")
    return new.strip('"') if sep else "a binary file"


def restore_redacted(diff: str, repo: Path, redactor: Redactor) -> str | None:
    """The diff with redacted context and removed lines put back from the repository's
    files, or None when a redacted line cannot be restored exactly (added, in a header,
    spanning lines, or the file has changed since)."""
    if MARK not in diff:
        return diff
    files: dict[str, list[str] | None] = {}
    out: list[str] = []
    for line in _walk(diff):
        if MARK not in line.text:
            out.append(line.text)
            continue
        if line.kind not in ("ctx", "del") or line.old is None:
            return None
        if line.old not in files:
            files[line.old] = _lines(repo, line.old)
        have = files[line.old]
        if have is None or not 0 < line.old_no <= len(have):
            return None
        original = have[line.old_no - 1]
        if redactor.redact(original) != line.body:
            return None
        out.append(line.text[0] + original + ("\n" if line.text.endswith("\n") else ""))
    return "".join(out)


def _lines(repo: Path, rel: str) -> list[str] | None:
    path = (repo / rel).resolve()
    if not path.is_relative_to(repo.resolve()):
        return None
    try:
        return path.read_bytes().decode().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
