"""Secret redaction: token shapes, env secrets, events and log records."""

from __future__ import annotations

import logging

import pytest

from corral.domain import ActionTaken, Observed
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
