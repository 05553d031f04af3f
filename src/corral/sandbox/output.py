"""Command output for a model: capped (head and tail kept) and always printable text.

A 50 MB stream never costs more than the cap in memory: the head fills once, the tail
is a sliding window, everything between is only counted.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BINARY_RATIO = 0.10


def omitted_marker(count: int) -> str:
    return f"\n[... {count:,} bytes omitted ...]\n"


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(data: bytes) -> str:
    """Bytes as text a model can read: UTF-8 with replacement, controls made visible.

    A chunk that is mostly not text (NULs, invalid UTF-8, control bytes) is summarised
    instead, because escaped noise wastes context and helps no one.
    """
    if not data:
        return ""
    text = data.decode("utf-8", errors="replace")
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    bad = text.count("\ufffd") + len(_CONTROL.findall(text.replace("\r", "")))
    if bad > max(4, int(len(text) * _BINARY_RATIO)):
        return f"[binary output: {len(data):,} bytes]"
    text = text.replace("\r", "\n")
    return _CONTROL.sub(_visible, text)


class OutputCollector:
    """Keeps the first and last half of `cap` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._head_cap = cap // 2
        self._tail_cap = cap - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        if len(data) >= self._tail_cap:
            self._tail = bytearray(data[-self._tail_cap :])
            return
        self._tail += data
        extra = len(self._tail) - self._tail_cap
        if extra > 0:
            del self._tail[:extra]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    def render(self) -> str:
        if not self.truncated:
            return printable(bytes(self._head + self._tail))
        omitted = self.total - len(self._head) - len(self._tail)
        return printable(bytes(self._head)) + omitted_marker(omitted) + printable(bytes(self._tail))
