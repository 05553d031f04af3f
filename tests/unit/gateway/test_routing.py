"""Routing rules, escalation, config validation: pure functions, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import ConfigError
from corral.gateway import RouteDecision, TaskInfo, load_config, parse_config, route
from corral.gateway.routing import Health

DEPLOYMENTS = [
    {"name": n, "model": f"openai-compatible:http://127.0.0.1:1/v1#{n}"}
    for n in ("cheap", "mid", "strong")
]
ROUTES = [
    {
        "name": "cve",
        "match": {"kind": "cve", "labels": ["security"]},
        "profile": "cve-fixer",
        "models": ["cheap", "mid", "strong"],
    },
    {"name": "big", "match": {"min_repo_files": 5000}, "profile": "big-repo", "models": ["strong"]},
    {"name": "rest", "profile": "default", "models": ["cheap", "strong"], "escalate": False},
]
CONFIG = parse_config({"deployments": DEPLOYMENTS, "routes": ROUTES})


def test_cheap_first_then_escalate_on_retry() -> None:
    first = route(CONFIG.routes, TaskInfo(kind="cve", labels=("security", "py"), attempt=1))
    assert first.profile == "cve-fixer" and first.models == ("cheap", "mid", "strong")
    second = route(CONFIG.routes, TaskInfo(kind="cve", labels=("security",), attempt=2))
    assert second.models == ("mid", "strong", "cheap")
    fifth = route(CONFIG.routes, TaskInfo(kind="cve", labels=("security",), attempt=5))
    assert fifth.models == ("strong", "mid", "cheap") and "escalated" in fifth.reason
    assert isinstance(fifth, RouteDecision) and fifth.attempt == 5
    assert RouteDecision.model_validate_json(fifth.model_dump_json()) == fifth  # event-ready


def test_labels_repo_size_and_catch_all() -> None:
    assert route(CONFIG.routes, TaskInfo(kind="cve", labels=())).rule == "rest"
    assert route(CONFIG.routes, TaskInfo(kind="refactor", repo_files=9000)).rule == "big"
    assert route(CONFIG.routes, TaskInfo(kind="refactor", repo_files=10)).rule == "rest"
    assert route(CONFIG.routes, TaskInfo(attempt=3)).models == ("cheap", "strong")  # no escalate


def test_no_matching_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no route matches"):
        route(CONFIG.routes[:1], TaskInfo(kind="other"))


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    bad_route = {"deployments": DEPLOYMENTS, "routes": [{**ROUTES[0], "models": ["nope"]}]}
    with pytest.raises(ConfigError, match="unknown deployments: nope"):
        parse_config(bad_route)
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.limits\.rpm"):
        parse_config({"deployments": [{**DEPLOYMENTS[0], "limits": {"rpm": -1}}]})
    with pytest.raises(ConfigError, match="Extra inputs"):
        parse_config({"deployments": DEPLOYMENTS, "typo": 1})
    path = tmp_path / "gw.yaml"
    path.write_text("deployments: [\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_repeated_failures_cool_a_deployment_down() -> None:
    health = Health()
    health.failed(0.0, threshold=3, cooldown_s=10)
    health.failed(1.0, threshold=3, cooldown_s=10)
    assert not health.cooling(1.0)
    health.succeeded()
    for t in (2.0, 3.0, 4.0):
        health.failed(t, threshold=3, cooldown_s=10)
    assert health.cooling(5.0) and not health.cooling(14.5) and health.cooldowns == 1
