"""What a git binary patch carries, as text a secret search can read.

Why: `git diff --binary` writes a binary file's new content zlib-compressed and base85
encoded, so a secret in it (a token written into a file with a NUL byte, say) passes a
search of the diff's text unseen, and would be delivered and stored. Each hunk is decoded
here: a `literal` hunk to the file's bytes, a `delta` hunk to the bytes it inserts (the
bytes it copies were in the old file already). Bytes become text one to one (latin-1),
so an ASCII secret reads the same as in a text file.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

MARK = "GIT binary patch\n"
_HUNK_HEAD = re.compile(r"(literal|delta) (\d+)\n")
_MAX_BYTES = 64 * 1024 * 1024  # larger hunks are not decoded (and so held: see `Hunk`)


@dataclass(frozen=True)
class Hunk:
    start: int  # the hunk's span in the diff text (head line to the blank line after it)
    end: int
    forward: bool  # the new content (False: the reverse hunk, the old content)
    text: str | None  # what it carries; None: it could not be decoded


def hunks(diff: str) -> Iterator[Hunk]:
    """Every binary hunk of a git diff, decoded where possible."""
    at = diff.find(MARK)
    while at != -1:
        pos = at + len(MARK)
        for forward in (True, False):
            head = _HUNK_HEAD.match(diff, pos)
            if head is None:
                break
            end = diff.find("\n\n", head.end() - 1)
            end = len(diff) if end == -1 else end + 2
            body = diff[head.end() : end]
            yield Hunk(pos, end, forward, _decode(head[1], int(head[2]), body))
            pos = end
        at = diff.find(MARK, pos)


def _decode(kind: str, size: int, body: str) -> str | None:
    if size > _MAX_BYTES:
        return None
    try:
        packed = b"".join(_line(line) for line in body.split("\n") if line)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, _MAX_BYTES + 1)
    except (ValueError, zlib.error):
        return None
    if len(data) > _MAX_BYTES:
        return None
    if kind == "literal":
        return data.decode("latin-1")
    inserted = _inserted(data)
    return None if inserted is None else "\n".join(inserted)


def _line(line: str) -> bytes:
    """One base85 line; its first character says how many bytes it holds (A-Z 1-26,
    a-z 27-52)."""
    n = ord(line[0]) - (ord("A") - 1) if line[0] <= "Z" else ord(line[0]) - (ord("a") - 27)
    if not 0 < n <= 52:
        raise ValueError("bad base85 line length")
    return base64.b85decode(line[1:])[:n]


def _inserted(delta: bytes) -> list[str] | None:
    """The runs of bytes a git delta inserts, each as text (consecutive inserts joined:
    git splits a long insert into pieces of at most 127 bytes)."""
    pos = 0
    for _ in range(2):  # the source's and the result's sizes
        while pos < len(delta) and delta[pos] & 0x80:
            pos += 1
        pos += 1
    runs: list[str] = []
    run = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy from the source: skip its offset and size bytes
            pos += bin(op & 0x7F).count("1")
            if run:
                runs.append(run.decode("latin-1"))
                run = bytearray()
        elif op:
            run += delta[pos : pos + op]
            pos += op
        else:
            return None  # reserved: not a delta git writes
    if run:
        runs.append(run.decode("latin-1"))
    return runs
