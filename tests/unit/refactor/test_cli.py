"""`corral refactor plan`: the table, the JSON, the campaign file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.main import app
from corral.orchestrator.campaign_file import load_campaign

runner = CliRunner()


def _repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "base.py").write_text("def f():\n    return old_call()\n")
    (root / "pkg" / "user.py").write_text("from pkg import base\nold_call(base.f())\n")
    return root


def _spec(root: Path, find: str = r"\bold_call\(", name: str = "refactor") -> Path:
    spec = root / f"{name}.yaml"
    spec.write_text(f"name: new-call\ngoal: Call new_call instead.\nfind: '{find}'\nmax_files: 1\n")
    return spec


def test_plan_prints_json_and_writes_a_campaign(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    out = tmp_path / "campaign.yaml"
    result = runner.invoke(
        app, ["refactor", "plan", str(_spec(tmp_path)), "--repo", str(repo),
              "--campaign", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stderr: a note that a non-git repo is not stacked
    assert (data["files"], data["sites"], data["levels"]) == (2, 2, 2)
    first, second = data["subtasks"]
    assert first["files"] == [{"path": "pkg/base.py", "lines": [2]}]
    assert second["depends_on"] == [first["id"]]
    campaign, _ = load_campaign(out)
    assert [t.id for t in campaign.tasks] == [first["id"], second["id"]]

    table = runner.invoke(app, ["refactor", "plan", str(_spec(tmp_path)), "--repo", str(repo)])
    assert table.exit_code == 0
    assert f"{second['id']}  level 1  1 files  1 sites  after {first['id']}" in table.output


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    out = tmp_path / "campaign.yaml"
    cases = [
        (["refactor", "plan", str(tmp_path / "missing.yaml")], "does not exist"),
        (["refactor", "plan", str(_spec(tmp_path)), "--repo", str(tmp_path / "no")],
         "does not exist"),
        (["refactor", "plan", str(_spec(tmp_path, "nothing_matches\\(", "none")), "--repo", str(repo),
          "--campaign", str(out)], "nothing in"),
        (["refactor", "plan", str(_spec(tmp_path, "broken(", "broken")), "--repo", str(repo)],
         "find: not a valid regex"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code != 0, args
        assert message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
