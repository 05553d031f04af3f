"""`corral bench ...` JSON shapes, and `corral serve` failing fast on bad config."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.gateway import bench_app
from corral.cli.main import app

runner = CliRunner()


def test_bench_ratelimit_prints_the_promised_fields() -> None:
    result = runner.invoke(
        app,
        [
            *("bench", "ratelimit", "--agents", "40", "--rpm", "600", "--tpm", "60000"),
            *("--duration", "1.5", "--latency", "0.02", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"requests", "rate_limited", "failed_tasks", "utilization"} <= set(data)
    assert data["failed_tasks"] == 0 and data["rate_limited"] == 0 and data["requests"] > 0
    assert 0 < data["utilization"] <= 1.0


def test_bench_budget_prints_spend_and_never_overshoots() -> None:
    result = runner.invoke(
        app, ["bench", "budget", "--agents", "200", "--budget-usd", "0.05", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"spent_usd", "overshoot_usd", "rejected_calls"} <= set(data)
    assert data["overshoot_usd"] == 0 and 0 < data["spent_usd"] <= 0.05
    assert data["rejected_calls"] == 200  # every agent ran until the budget said no


def test_bench_is_an_extendable_group() -> None:
    names = {c.name for c in bench_app.registered_commands}
    assert {"ratelimit", "budget"} <= names


def test_serve_with_a_missing_key_fails_at_startup_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("deployments:\n  - name: main\n    model: openai/gpt-4o-mini\n")
    result = runner.invoke(
        app,
        ["serve", "--config", str(cfg), "--socket", str(tmp_path / "s.sock")],
        env={"OPENAI_API_KEY": ""},
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0]


def test_serve_with_an_unknown_model_fails_at_startup(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("deployments:\n  - name: main\n    model: madeup/model-x\n")
    result = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert result.exit_code == 2 and "unknown model spec" in result.stderr
