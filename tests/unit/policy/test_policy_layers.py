"""Policy layers: built-in, the installation's file, then campaign and task files that
may only add rules; snapshots taken when a campaign file is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.domain import ConfigError, ToolCall, ToolResult, ToolSpec
from corral.orchestrator.campaign_file import load_campaign
from corral.orchestrator.policy import (
    Decision,
    PolicyGuard,
    action_key,
    effective_policy,
    read_policy_file,
)
from corral.ports import Sandbox

A, D, R = Decision.allow, Decision.deny, Decision.require_approval
INDEX = "pip install --index-url https://pkgs.internal.example/simple foo"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _decide(policy: Any, command: str) -> tuple[Decision, str]:
    v = policy.evaluate("bash", {"command": command})
    return v.decision, v.rule_name


def test_a_campaign_file_adds_rules_and_cannot_relax_any(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "p.yaml",
        """
rules:
  - {name: no-deploy, decision: deny, tools: [bash], command: 'make deploy'}
  - {name: ask-before-tests, decision: require_approval, tools: [bash], command: pytest}
  - {name: push-is-fine, decision: allow, tools: [bash], command: 'git push'}
  - {name: rm-is-fine, decision: allow, tools: [bash], command: 'rm'}
""",
    )
    p = effective_policy(tmp_path / "home", files=[read_policy_file(f)])
    assert _decide(p, "make deploy") == (D, "no-deploy")
    assert _decide(p, "pytest -q") == (R, "ask-before-tests")
    # an added allow never beats a built-in rule: deny wins, then require_approval
    assert _decide(p, "git push origin main") == (R, "git-push")
    assert _decide(p, "rm -rf /") == (D, "delete-outside-workspace")
    assert _decide(p, "ls") == (A, "default")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("disable: [git-push]", "`disable` is not allowed: a campaign, task or in-repository"),
        ("rules: [{name: git-push, decision: allow, command: 'git push'}]",
         "name 'git-push' is a built-in rule"),
        ("rules: [{name: a, decision: deny, command: x}, {name: a, decision: deny, command: y}]",
         "rule #2: name 'a' is used twice"),
        ("rules: [{name: a, decision: perhaps, command: x}]", "rule #1: decision: Input should"),
        ("rules: [{name: a, decision: deny, command: '(('}]", "bad regex"),
        ("rules: [oops]", "rule #1: Input should be a valid dictionary"),
        ("rules: {name: a}", "`rules` must be a list"),
        ("rules: [: bad", "invalid YAML"),
        ("- just a list", "expected a mapping"),
    ],
)  # fmt: skip
def test_bad_campaign_policy_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        read_policy_file(f)
    assert message in str(err.value)
    assert str(err.value).startswith(str(f)) and "\n" not in str(err.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy file .*nope\.yaml does not exist"):
        read_policy_file(tmp_path / "nope.yaml")


def test_the_installation_may_relax_and_a_campaign_tightens_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home / "policy.yaml", "disable: [unknown-index]\n")
    strict = _write(
        tmp_path / "strict.yaml",
        """
rules:
  - {name: internal-index, decision: require_approval, tools: [bash],
     command: '--index-url'}
""",
    )
    assert _decide(effective_policy(None), INDEX) == (R, "unknown-index")
    assert _decide(effective_policy(home), INDEX) == (A, "default")
    tight = effective_policy(home, files=[read_policy_file(strict)])
    assert _decide(tight, INDEX) == (R, "internal-index")
    assert len({effective_policy(None).digest, effective_policy(home).digest, tight.digest}) == 3


def test_an_installation_file_inside_the_repo_under_work_may_only_add(tmp_path: Path) -> None:
    """`corral run --repo .` with the default home `./.corral`: the repo could have shipped
    `.corral/policy.yaml`, so it cannot switch a rule off."""
    repo = tmp_path / "repo"
    home = repo / ".corral"
    _write(home / "policy.yaml", "disable: [git-push]\n")
    assert _decide(effective_policy(home, tmp_path / "elsewhere"), "git push")[0] is A
    with pytest.raises(ConfigError, match=r"inside the repository under work.*`disable` is not"):
        effective_policy(home, repo)
    _write(home / "policy.yaml", "rules: [{name: git-push, decision: allow, command: push}]\n")
    with pytest.raises(ConfigError, match="'git-push' is a built-in rule"):
        effective_policy(home, repo)
    _write(home / "policy.yaml", "rules: [{name: no-curl, decision: deny, command: curl}]\n")
    assert _decide(effective_policy(home, repo), "curl x") == (D, "no-curl")
    assert _decide(effective_policy(home, repo), "git push") == (R, "git-push")


class _Tools:
    def __init__(self) -> None:
        self.ran: list[str] = []

    def specs(self) -> list[ToolSpec]:
        return []

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
        self.ran.append(call.arguments["command"])
        return ToolResult(output="ran")


async def test_an_approval_never_opens_a_denied_action(tmp_path: Path) -> None:
    """Approved while held; denied since (the installation added a deny): deny wins."""
    home = tmp_path / "home"
    _write(home / "policy.yaml", "rules: [{name: no-push, decision: deny, command: 'git push'}]")
    key = action_key("bash", {"command": "git push origin main"})
    tools = _Tools()
    guard = PolicyGuard(tools, effective_policy(home), approved={key})
    out = await guard.run(
        object(),
        ToolCall(
            id="c",
            name="bash",  # type: ignore[arg-type]
            arguments={"command": "git push origin main"},
        ),
    )
    assert out.is_error and "denied by rule 'no-push'" in out.output and tools.ran == []


def _campaign(tmp_path: Path, body: dict[str, Any]) -> Path:
    (tmp_path / "repo").mkdir(exist_ok=True)
    base = {"name": "c", "model": "scripted:s.json"}
    return _write(tmp_path / "c.yaml", yaml.safe_dump(base | body, sort_keys=False))


def test_campaign_and_task_files_are_read_once_and_kept(tmp_path: Path) -> None:
    _write(tmp_path / "policies/all.yaml", "rules: [{name: no-a, decision: deny, command: aaa}]")
    _write(tmp_path / "policies/t1.yaml", "rules: [{name: no-b, decision: deny, command: bbb}]")
    f = _campaign(tmp_path, {"policy": "policies/all.yaml", "tasks": [
        {"id": "t1", "repo": "repo", "instructions": "x", "policy": "policies/t1.yaml"},
        {"id": "t2", "repo": "repo", "instructions": "x"},
    ]})  # fmt: skip
    spec, _ = load_campaign(f)
    t1, t2 = spec.tasks
    assert [Path(p.path).name for p in t1.policy_files] == ["all.yaml", "t1.yaml"]
    assert [Path(p.path).name for p in t2.policy_files] == ["all.yaml"]
    # the snapshot is what applies: the files may change or vanish afterwards
    for name in ("all.yaml", "t1.yaml"):
        (tmp_path / "policies" / name).unlink()
    p1 = effective_policy(None, files=t1.policy_files)
    p2 = effective_policy(None, files=t2.policy_files)
    assert _decide(p1, "bbb") == (D, "no-b") and _decide(p1, "aaa") == (D, "no-a")
    assert _decide(p2, "bbb") == (A, "default") and _decide(p2, "aaa") == (D, "no-a")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"policy": "missing.yaml"}, r"c\.yaml:3: policy: policy file .*missing\.yaml does not"),
        ({"task_policy": "bad.yaml"},
         r"c\.yaml:7: tasks\[0\]\.policy: .*bad\.yaml: `disable` is not allowed"),
        ({"task_policy": "clash.yaml", "policy": "base.yaml"},
         r"c\.yaml:8: tasks\[0\]\.policy: .*clash\.yaml: rule #1: name 'curl' is already a"),
        ({"task_policy_files": [{"path": "x", "sha256": "y", "text": "{}"}]},
         r"c\.yaml:8: tasks\[0\]\.policy_files: filled in by corral"),
    ],
)  # fmt: skip
def test_bad_policy_in_a_campaign_file(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    _write(tmp_path / "bad.yaml", "disable: [git-push]")
    _write(tmp_path / "base.yaml", "rules: [{name: curl, decision: deny, command: curl}]")
    _write(tmp_path / "clash.yaml", "rules: [{name: curl, decision: deny, command: wget}]")
    task: dict[str, Any] = {"id": "t", "repo": "repo", "instructions": "x"}
    for k in ("policy", "policy_files"):
        if f"task_{k}" in body:
            task[k] = body.pop(f"task_{k}")
    f = _campaign(tmp_path, body | {"tasks": [task]})
    with pytest.raises(ConfigError, match=message) as err:
        load_campaign(f)
    assert "\n" not in str(err.value)
