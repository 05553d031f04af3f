"""Secret redaction for everything corral stores or logs.

Two nets: known values (every host environment variable whose name looks like a key,
token, secret or password, plus values registered by config) and common token shapes
(OpenAI/Anthropic-style `sk-…`, GitHub `ghp_…`/`github_pat_…`, Slack `xox?-…`, AWS
`AKIA…`, PEM private keys, JWTs). Matches become `[REDACTED:<kind>]`. Events are
redacted field by field (after JSON decoding), so escaping cannot hide a value, and a
git binary patch is searched decoded (`binary_patch`), so its encoding cannot either: a
hunk holding a secret becomes `[REDACTED:binary]` whole.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from pydantic_core import to_json

from corral.domain import EVENT_ADAPTER, Event, event_to_json
from corral.orchestrator.policy import binary_patch

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE", re.I)
MIN_SECRET_LEN = 8

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx))
    for kind, rx in (
        ("private_key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z0-9 ]*"
                        r"PRIVATE KEY-----|\Z)"),
        ("github_pat", r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
        ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
        ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("api_key", r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{19,}"),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    )
)  # fmt: skip


_ANY_SHAPE = re.compile("|".join(f"(?:{p.pattern})" for _, p in PATTERNS), re.DOTALL)
# A literal every token shape above contains: text holding none of them (nearly all text)
# needs no regex search, and a substring test is many times cheaper than one.
_SHAPE_HINTS = ("-----BEGIN", "github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox",
                "AKIA", "ASIA", "sk-", "eyJ")  # fmt: skip
# Up to this many known values are looked for one by one (a substring test each).
_FEW_VALUES = 16
BINARY_MARK = "[REDACTED:binary]"
_BINARY_HINT = binary_patch.MARK.strip()  # its newline is escaped in JSON text


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


def looks_secret(name: str, value: str) -> bool:
    """An env var worth redacting: a secret-sounding name and a value long enough to
    be one (paths such as SSH_AUTH_SOCK are not secrets)."""
    return (
        bool(SECRET_NAME.search(name))
        and len(value) >= MIN_SECRET_LEN
        and not value.startswith("/")
        and value.lower() not in {"true", "false", "none", "null"}
    )


class Redactor:
    """Replaces known secret values and token shapes in text and in events."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = {}  # value -> kind
        # Snapshots made under the lock: searches read them while `add` may run.
        self._plain_forms: tuple[str, ...] = ()
        self._value_rx: re.Pattern[str] | None = None
        self._json_forms: tuple[str, ...] = ()  # each value as it appears in JSON text
        self._json_rx: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for value, kind in (values or {}).items():
            self.add(value, kind)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if env is None else env
        return cls({v: f"env:{k}" for k, v in env.items() if looks_secret(k, v)})

    def add(self, value: str, kind: str = "config") -> None:
        """Register a secret value (e.g. a token read from a config file)."""
        if len(value) < MIN_SECRET_LEN:
            return
        with self._lock:
            self._values[value] = kind
            self._plain_forms, self._value_rx = _alternatives(self._values)
            escaped = {to_json(v).decode()[1:-1] for v in self._values}
            self._json_forms, self._json_rx = _alternatives(escaped)

    def finds(self, text: str) -> bool:
        """Whether the text holds any secret value or token shape."""
        return bool(text) and self._anything(text)

    def _anything(self, text: str) -> bool:
        """One search over the text for any secret value or token shape (the common case
        is none, and then nothing is rewritten), binary patches decoded."""
        if self._plain(text):
            return True
        return binary_patch.MARK in text and any(self.hides(h) for h in binary_patch.hunks(text))

    def hides(self, hunk: binary_patch.Hunk) -> bool:
        """Whether a binary hunk holds a secret (one that cannot be decoded may)."""
        return hunk.text is None or self._plain(hunk.text)

    def _plain(self, text: str) -> bool:
        if any(hint in text for hint in _SHAPE_HINTS) and _ANY_SHAPE.search(text):
            return True
        return _holds_any(text, self._plain_forms, self._value_rx)

    def redact(self, text: str) -> str:
        if not text or not self._anything(text):
            return text
        if binary_patch.MARK in text:
            text = self._redact_binary(text)
        rx = self._value_rx
        if rx is not None:
            text = rx.sub(lambda m: f"[REDACTED:{self._values.get(m[0], 'secret')}]", text)
        for kind, pattern in PATTERNS:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
        return text

    def _redact_binary(self, text: str) -> str:
        out: list[str] = []
        at = 0
        for hunk in binary_patch.hunks(text):
            if self.hides(hunk):
                out += [text[at : hunk.start], BINARY_MARK, "\n\n"]
                at = hunk.end
        out.append(text[at:])
        return "".join(out)

    def redact_obj(self, obj: Any) -> Any:
        """The same structure with every string redacted (dict keys included)."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact(str(k)): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.redact_obj(v) for v in obj]
        return obj

    def redact_event(self, event: Event) -> Event:
        """The event with secrets replaced; the same object when there was nothing to hide."""
        data = event.model_dump(mode="json")
        # The raw strings (not the JSON text, where escaping could hide a value), searched
        # once; only an event that holds something is rewritten field by field.
        if not self._anything("\x00".join(_strings(data))):
            return event
        clean = self.redact_obj(data)
        if clean == data:
            return event
        return EVENT_ADAPTER.validate_python(clean)

    def encode_event(self, event: Event) -> tuple[Event, str]:
        """The event with secrets replaced, and its JSON as stored. Serialized once when
        the JSON shows no trace of a secret (nearly always): every hint of a token shape,
        every known value (as JSON escapes it) and a binary patch's mark appear in the
        JSON text whenever they appear in a field, so their absence there is proof."""
        text = event_to_json(event)
        if not self._json_may_hold(text):
            return event, text
        clean = self.redact_event(event)
        return clean, text if clean is event else event_to_json(clean)

    def _json_may_hold(self, text: str) -> bool:
        if any(hint in text for hint in _SHAPE_HINTS) or _BINARY_HINT in text:
            return True
        return _holds_any(text, self._json_forms, self._json_rx)


def _alternatives(values: Iterable[str]) -> tuple[tuple[str, ...], re.Pattern[str]]:
    """The values, longest first (so a regex match takes the whole of the longest), and
    one regex for them all."""
    forms = tuple(sorted(values, key=len, reverse=True))
    return forms, re.compile("|".join(re.escape(v) for v in forms))


def _holds_any(text: str, values: Collection[str], rx: re.Pattern[str] | None) -> bool:
    """A few values are looked for one by one (a substring test each), many by one regex."""
    if len(values) <= _FEW_VALUES:
        return any(value in text for value in values)
    return rx is not None and rx.search(text) is not None


_DEFAULT: Redactor | None = None


def default_redactor() -> Redactor:
    """The process-wide redactor: host env secrets, plus whatever config registered."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor.from_env()
    return _DEFAULT


def register_secret(value: str, kind: str = "config") -> None:
    default_redactor().add(value, kind)


class RedactingFilter(logging.Filter):
    """Redacts a log record's rendered message and traceback before any handler sees it."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self._redactor or default_redactor()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = r.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        return True


_INSTALLED = False


def install_log_redaction(redactor: Redactor | None = None) -> None:
    """Redact every log record of this process, whatever handlers exist now or later.

    The filter runs in the record factory (so records are clean before any logger,
    handler or propagation sees them) and is also attached to the root's handlers.
    """
    global _INSTALLED
    filt = RedactingFilter(redactor)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(filt)
    if _INSTALLED:
        return
    _INSTALLED = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        filt.filter(record)
        return record

    logging.setLogRecordFactory(factory)
