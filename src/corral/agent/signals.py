"""Control-flow signals of the loop: how a run ends. Deliberately not CorralErrors."""

from __future__ import annotations


class RunEnded(Exception):
    """Base: the loop stops and records why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Finished(RunEnded):
    """The agent called `finish`."""


class LimitExceeded(RunEnded):
    """A step, cost or wall-time limit was reached."""


class Stuck(RunEnded):
    """The agent keeps doing the same thing without progress."""


class Escalated(RunEnded):
    """The agent handed the task to a human."""
