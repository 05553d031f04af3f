"""Choosing a backend, and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import ConfigError
from corral.sandbox import BwrapSandbox, LocalSandbox, SandboxLimits, open_sandbox


def test_kinds(tmp_path: Path) -> None:
    assert isinstance(open_sandbox("bwrap", tmp_path), BwrapSandbox)
    assert isinstance(open_sandbox("local", tmp_path, unsafe_local=True), LocalSandbox)


def test_local_needs_unsafe_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--unsafe-local") as err:
        open_sandbox("local", tmp_path)
    assert "\n" not in str(err.value)


def test_unknown_kind_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bwrap, docker, local") as err:
        open_sandbox("docker-ish", tmp_path)
    assert "\n" not in str(err.value)


def test_timeout_clamped() -> None:
    limits = SandboxLimits(default_timeout=5, max_timeout=10)
    assert limits.clamp_timeout(None) == 5
    assert limits.clamp_timeout(0) == 5
    assert limits.clamp_timeout(3) == 3
    assert limits.clamp_timeout(99) == 10
