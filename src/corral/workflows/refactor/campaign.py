"""A plan as an ordinary campaign: one task per subtask, `depends_on` kept, stacked
(each part starts from its parents' results, see `stack`) when the repo is a git repo.

Each task's instructions carry the goal, the files it may change with their sites, the
mechanical rewrite if the refactor has one, and how to verify; so a task is
self-contained for whichever model or agent takes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from corral.domain import CampaignSpec, ConfigError
from corral.workflows.hostgit import head_commit
from corral.workflows.refactor.plan import RefactorPlan, Subtask
from corral.workflows.refactor.playbook import PREFIX, payload_block
from corral.workflows.refactor.stack import KIND, Stack, lay_out, start_dir

MAX_LISTED_SITES = 60  # per task; the rest are counted, the regex finds them anyway


def instructions(plan: RefactorPlan, sub: Subtask, stack: Stack | None = None) -> str:
    spec = plan.spec
    lines = [
        f"Refactor `{spec.name}`, part {sub.id} of {len(plan.subtasks)}.",
        "",
        spec.goal.strip(),
        "",
        f"Change only these files; each listed line matches the regex `{spec.find}`:",
    ]
    listed = 0
    for f in sub.files:
        lines.append(f"- {f.path}")
        for site in f.sites:
            if listed < MAX_LISTED_SITES:
                lines.append(f"    {site.line}: {site.text}")
            listed += 1
    if listed > MAX_LISTED_SITES:
        lines.append(f"  ... and {listed - MAX_LISTED_SITES} more sites in these files")
    if spec.replace is not None:
        lines += ["", f"The mechanical rewrite: replace each match with `{spec.replace}`."]
    lines += ["", "When you are done no line of these files may match that regex."]
    if spec.test:
        lines.append(f"Then run `{spec.test}`: it must pass before you finish.")
    if sub.depends_on:
        lines.append(
            f"This part runs after {', '.join(sub.depends_on)}: "
            + ("their changes are already in this checkout." if stack else
               "their changes are their own patches, not in this checkout; do not redo them.")
        )  # fmt: skip
    data: dict[str, Any] = {
        "part": sub.id, "goal": spec.goal, "files": [f.path for f in sub.files],
        "find": spec.find, "replace": spec.replace, "test": spec.test,
        "stack": stack.payload() if stack else None,
    }  # fmt: skip
    lines += ["", payload_block(data).rstrip("\n")]
    return "\n".join(lines) + "\n"


def campaign_yaml(data: dict[str, Any]) -> str:
    """Instructions as YAML block text, so the file reads like the task."""

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)


def campaign_data(
    plan: RefactorPlan, *, model: str | None = None, sandbox: str = "bwrap",
    stack: Stack | None = None, unsafe_local: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The campaign file's content (validated): `corral campaign run` takes it as is.
    Without `model`, a refactor with a `replace` runs on `playbook:refactor`. With a
    `stack` (see `stack.lay_out`) each part starts from its parents' results."""
    tasks = [
        {
            "id": sub.id,
            "repo": str(start_dir(stack, sub.id, sub.depends_on) if stack else plan.repo.resolve()),
            "kind": KIND,  # its delivery checks the part's files, and stacks it if stacked
            "instructions": instructions(plan, sub, stack),
            "depends_on": list(sub.depends_on),
            "labels": [f"refactor:{plan.spec.name}", f"level:{sub.level}"],
            "sandbox": sandbox,
            "on_parent_failure": "skip",
        }
        for sub in plan.subtasks
    ]
    data: dict[str, Any] = {"name": f"refactor-{plan.spec.name}", "tasks": tasks}
    if model is None and plan.spec.replace is not None:
        model = PREFIX  # a mechanical rewrite needs no LLM
    if model is not None:
        data["model"] = model
    if unsafe_local:
        data["unsafe_local"] = True
    CampaignSpec.model_validate(data)  # a plan always makes a valid campaign
    return data


def write_campaign(
    plan: RefactorPlan, out: Path, *, home: Path, model: str | None = None,
    sandbox: str = "bwrap", unsafe_local: bool = False,
) -> Stack | None:  # fmt: skip
    """The plan as a campaign file at `out`, its parts stacked when the repo is a git
    checkout (None: it is not). ConfigError, with nothing left behind, if it cannot be."""
    if not plan.subtasks:
        raise ConfigError(f"no campaign written: nothing in {plan.repo} matches `{plan.spec.find}`")
    stack = None
    if head_commit(plan.repo) is not None:
        parts = {s.id: s.depends_on for s in plan.subtasks}
        stack = lay_out(home, plan.repo, plan.spec.name, parts)
    data = campaign_data(plan, model=model, sandbox=sandbox, stack=stack,
                         unsafe_local=unsafe_local)  # fmt: skip
    try:
        out.write_text(campaign_yaml(data))
    except OSError as exc:
        if stack is not None:  # nothing would ever use it
            shutil.rmtree(stack.root, ignore_errors=True)
        raise ConfigError(f"{out}: cannot write the campaign file ({exc.strerror})") from None
    return stack
