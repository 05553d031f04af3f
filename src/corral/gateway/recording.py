"""Recording every gateway call, and replaying the recording instead of a provider.

A record is one JSON line: the deployment, the request (messages, tools, max_tokens),
its key (a hash of the request), and the completion or the error. Replay serves, for
each request key, the recorded answers in the order they were recorded, so a re-run
that asks the same questions gets the same answers, with no provider and no key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from corral.domain import Completion, ConfigError, Message, ProviderError, ToolSpec
from corral.models.openai_format import one_line

__all__ = ["Recorder", "Replayer", "request_key"]


def _request(
    messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int
) -> dict[str, Any]:
    return {
        "messages": [m.model_dump(mode="json") for m in messages],
        "tools": [t.model_dump(mode="json") for t in tools],
        "max_tokens": max_tokens,
    }


def request_key(
    deployment: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int
) -> str:
    data = {"deployment": deployment, **_request(messages, tools, max_tokens)}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Recorder:
    """Appends one line per call to a JSONL file (flushed, so a crash loses nothing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def record(
        self,
        *,
        deployment: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        scope: Sequence[str],
        completion: Completion | None,
        error: BaseException | None = None,
    ) -> None:
        line = {
            "key": request_key(deployment, messages, tools, max_tokens),
            "deployment": deployment,
            "scope": list(scope),
            "request": _request(messages, tools, max_tokens),
            "completion": completion.model_dump(mode="json") if completion else None,
            "error": None if error is None else one_line(str(error)),
            "status": getattr(error, "status", None),
        }
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class Replayer:
    """Serves recorded answers by request key, in recorded order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._answers: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"replay file {self.path} cannot be read: {exc}") from None
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                self._answers[str(line["key"])].append(line)
            except (ValueError, KeyError, TypeError):
                raise ConfigError(
                    f"replay file {self.path}: line {number} is not a record"
                ) from None
        self.count = sum(len(q) for q in self._answers.values())

    def answer(
        self,
        deployment: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
    ) -> Completion:
        key = request_key(deployment, messages, tools, max_tokens)
        queue = self._answers.get(key)
        if not queue:
            raise ProviderError(
                f"replay {self.path}: no recorded answer left for this request to "
                f"{deployment!r} (key {key[:12]})"
            )
        line = queue.popleft()
        if line.get("completion") is None:
            raise ProviderError(
                str(line.get("error") or "recorded error"), status=line.get("status")
            )
        try:
            return Completion.model_validate(line["completion"])
        except ValidationError as exc:
            raise ProviderError(f"replay {self.path}: bad record: {one_line(str(exc))}") from None
