"""The Docker image for sandbox tests: built once per session (cached by tag) or a reason.

Called from `pytest_collection_finish` in the sandbox conftests, so the one-time build
(a minute or two on a fresh machine) happens before any test's timeout starts.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from corral.sandbox import docker_engine

_state: dict[str, str] = {}


def ensure_image() -> str:
    """'' when the image is ready, else why not (docker tests then fail with it)."""
    if "reason" not in _state:
        try:
            # In a thread: callers may already be inside an event loop.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, docker_engine.prepare_image(say=print)).result()
            _state["reason"] = ""
        except Exception as exc:  # a test reports it, with its one line
            _state["reason"] = str(exc)
    return _state["reason"]


def needs_docker(items: list[pytest.Item]) -> bool:
    return any("docker" in item.name for item in items)


def require_docker() -> None:
    """Fail (not skip: a missing engine is a setup bug here) if docker is not ready."""
    reason = ensure_image()
    if reason:
        pytest.fail(f"docker backend unavailable: {reason}", pytrace=False)
