"""Secret redaction: token shapes, env secrets, events and log records."""

from __future__ import annotations

import logging

import pytest

from corral.domain import ActionTaken, Observed, event_to_json
from corral.orchestrator.policy import RedactingFilter, Redactor

SHAPES = {
    "api_key": "sk-proj-" + "A1b2C3d4" * 5,
    "github_token": "ghp_" + "a" * 36,
    "github_pat": "github_pat_11ABCDEFG0" + "x" * 40,
    "slack_token": "xoxb-123456789012-abcdefABCDEF",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_each_token_shape_is_redacted(kind: str) -> None:
    text = f"before {SHAPES[kind]} after"
    assert Redactor().redact(text) == f"before [REDACTED:{kind}] after"


@pytest.mark.parametrize("count", [1, 40])
def test_every_registered_value_is_found_however_many(count: int) -> None:
    """Few values are looked for one by one, many by one regex: both find each."""
    values = {f"registered-secret-{i:04d}": f"k{i}" for i in range(count)}
    r = Redactor(values)
    for value, kind in values.items():
        assert r.finds(f"x {value} y") and r.redact(value) == f"[REDACTED:{kind}]"
    assert not r.finds("registered-secret-")


def test_harmless_text_is_left_alone() -> None:
    text = "task-1234567890abcdefghij disk-usage sk-short ghp_short eyJ AKIA123"
    assert Redactor().redact(text) == text


def test_env_secrets_by_name_and_registered_values() -> None:
    env = {"OPENAI_API_KEY": "custom-format-key-9f8e7d", "GITHUB_TOKEN": "tok-123456789",
           "HOME": "/root", "SSH_AUTH_SOCK": "/tmp/ssh-xyz/agent.1", "DEBUG_TOKEN": "1",
           "DB_PASSWORD": "hunter2hunter2"}  # fmt: skip
    r = Redactor.from_env(env)
    r.add("config-value-xyz-123", "config")
    r.add("short")  # too short to be a secret: ignored
    out = r.redact(
        "k=custom-format-key-9f8e7d p=hunter2hunter2 c=config-value-xyz-123 home=/root short"
    )
    assert out == ("k=[REDACTED:env:OPENAI_API_KEY] p=[REDACTED:env:DB_PASSWORD] "
                   "c=[REDACTED:config] home=/root short")  # fmt: skip


def test_events_are_redacted_field_by_field() -> None:
    r = Redactor({"my-very-secret-value": "env:X_SECRET"})
    action = ActionTaken(attempt_id="a", seq=1, call_id="c", tool="bash",
                         args={"command": "echo my-very-secret-value " + SHAPES["github_token"]})  # fmt: skip
    clean = r.redact_event(action)
    assert isinstance(clean, ActionTaken)
    assert clean.args["command"] == "echo [REDACTED:env:X_SECRET] [REDACTED:github_token]"
    obs = Observed(attempt_id="a", seq=2, call_id="c", tool="bash", output="fine")
    assert r.redact_event(obs) is obs


@pytest.mark.parametrize("count", [1, 40])
@pytest.mark.parametrize(
    ("value", "around"),
    [
        ('quo"ted\\back-slashed', "{}"),  # JSON escapes a quote and a backslash
        ("line\nbroken-secret", "x{}y"),  # and a newline
        ("n\u00e4me-\u00fcnicode-secret", "{}"),  # but not non-ASCII
        ("tab\tand\x01ctl-secret", "[{}]"),  # nor control characters the same way
    ],
)
def test_encoding_an_event_finds_a_value_json_escapes(value: str, around: str, count: int) -> None:
    """`encode_event` judges from the JSON text: a value must be found there as JSON
    writes it, among few registered values or many."""
    values = {value: "env:S"} | {f"other-registered-{i:04d}": "k" for i in range(count - 1)}
    r = Redactor(values)
    event = Observed(attempt_id="a", seq=1, call_id="c", tool="bash", output=around.format(value))
    clean, text = r.encode_event(event)
    assert isinstance(clean, Observed) and clean.output == around.format("[REDACTED:env:S]")
    assert text == event_to_json(clean) and value not in text


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_encoding_an_event_finds_every_token_shape_after_any_character(kind: str) -> None:
    """In JSON a newline becomes `\\n`, so a token after one follows a letter there: the
    shape is still found (the event's fields are searched, not the JSON text)."""
    event = ActionTaken(attempt_id="a", seq=1, call_id="c", tool="bash",
                        args={"command": "echo\n" + SHAPES[kind]})  # fmt: skip
    clean, text = Redactor().encode_event(event)
    assert isinstance(clean, ActionTaken)
    assert clean.args["command"] == f"echo\n[REDACTED:{kind}]"
    assert text == event_to_json(clean)


def test_encoding_a_clean_event_serializes_it_once_and_changes_nothing() -> None:
    r = Redactor({"my-very-secret-value": "env:X_SECRET"})
    obs = Observed(attempt_id="a", seq=2, call_id="c", tool="bash", output="all fine")
    clean, text = r.encode_event(obs)
    assert clean is obs and text == event_to_json(obs)


def test_log_filter_redacts_messages_args_and_tracebacks() -> None:
    r = Redactor({"pw-0123456789": "env:PW"})
    rec = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "login with %s", ("pw-0123456789",), None
    )
    try:
        raise ValueError(SHAPES["aws_access_key"])
    except ValueError:
        import sys

        rec.exc_info = sys.exc_info()
    assert RedactingFilter(r).filter(rec)
    assert rec.getMessage() == "login with [REDACTED:env:PW]"
    assert rec.exc_text is not None and "AKIA" not in rec.exc_text
    assert "[REDACTED:aws_access_key]" in rec.exc_text
