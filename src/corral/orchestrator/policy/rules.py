"""Risk rules for agent actions: allow, deny, or require a human's approval.

An action is one tool call. Its *text* is what rules read: the command for `bash`, the
path for file tools, `tool {json args}` otherwise. A rule matches when every condition
it gives holds (tool name, a regex over the text, globs over the `path` argument,
regexes over named arguments). The strictest matching rule decides (deny, then
require_approval, then allow); no match allows.

Layers, in order (see `layers.py`): the built-in rules; the installation's
`HOME/policy.yaml`, which may replace built-in rules by name, add its own, or `disable`
some (relaxing means redefining, so nothing is loosened by accident); then the campaign's
and the task's files, which may only *add* rules with new names. Since the strictest
match wins, an added rule can only tighten: deny always wins, require_approval beats
allow, and nothing but the installation's own file can relax a rule.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from corral.domain import ConfigError, Frozen


class Decision(StrEnum):
    allow = "allow"
    require_approval = "require_approval"
    deny = "deny"


_SEVERITY = {Decision.allow: 0, Decision.require_approval: 1, Decision.deny: 2}


class Rule(Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    decision: Decision
    tools: tuple[str, ...] = ()  # empty: any tool
    command: str | None = None  # regex searched in the action text
    paths: tuple[str, ...] = ()  # globs for the `path` argument (workspace-relative)
    args: dict[str, str] = Field(default_factory=dict)  # argument name -> regex
    reason: str = ""

    @field_validator("command")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"bad regex {value!r}: {e}") from None
        return value

    def matches(self, tool: str, args: Mapping[str, Any], text: str) -> bool:
        if self.tools and tool not in self.tools:
            return False
        if self.command is not None and not re.search(self.command, text, re.S):
            return False
        if self.paths:
            path = _rel(args.get("path"))
            if path is None or not any(_glob(path, g) for g in self.paths):
                return False
        for name, rx in self.args.items():
            value = args.get(name)
            if value is None or not re.search(rx, str(value)):
                return False
        return bool(self.tools or self.command or self.paths or self.args)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    rule: Rule | None
    action: str  # a short description of the action (what a reviewer reads)

    @property
    def rule_name(self) -> str:
        return self.rule.name if self.rule else "default"


def action_text(tool: str, args: Mapping[str, Any]) -> str:
    if tool == "bash":
        return str(args.get("command", ""))
    if "path" in args and "command" in args:
        return f"{tool} {args['command']} {args['path']}"
    return f"{tool} {json.dumps(dict(args), sort_keys=True, default=str)}"


def action_key(tool: str, args: Mapping[str, Any]) -> str:
    """A stable id for one exact action: pre-approving it lets a resumed attempt run it."""
    blob = json.dumps({"tool": tool, "args": dict(args)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _rel(path: Any) -> str | None:
    if not isinstance(path, str) or not path.strip():
        return None
    p = path.strip()
    for prefix in ("/workspace/", "./"):
        while p.startswith(prefix):
            p = p[len(prefix) :]
    return p


def _glob(path: str, pattern: str) -> bool:
    """fnmatch, where a pattern without a slash also matches the file name anywhere."""
    return fnmatch.fnmatch(path, pattern) or (
        "/" not in pattern and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)
    )


class Policy:
    """Named rules (built-in and installation: replaceable by name) plus rules added by
    campaign and task files (never replacing anything)."""

    def __init__(self, rules: list[Rule] | tuple[Rule, ...], added: tuple[Rule, ...] = ()) -> None:
        self.rules: dict[str, Rule] = {}
        for rule in rules:
            self.rules[rule.name] = rule
        self.added = added
        self._all = (*self.rules.values(), *added)

    @classmethod
    def builtin(cls) -> Policy:
        """Parsed once per process: every attempt starts from it, and it is never mutated
        (overrides build a new Policy)."""
        return _builtin()

    @functools.cached_property
    def digest(self) -> str:
        """Names what applied (in audit entries): equal rules, equal digest."""
        blob = json.dumps([r.model_dump(mode="json") for r in self._all], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(
        cls, text: str, *, source: str = "policy", base: Policy | None = None,
        add_only: bool = False,
    ) -> Policy:  # fmt: skip
        """`base` with the file applied. `add_only` (a campaign's or task's file): no
        `disable`, and every rule needs a name of its own."""
        data = _parse(text, source)
        rules = dict(base.rules) if base else {}
        added = base.added if base else ()
        if add_only and data.get("disable"):
            raise ConfigError(
                f"{source}: `disable` is not allowed: a campaign, task or in-repository "
                "policy may only add rules (only the installation's policy.yaml may relax one)"
            )
        for name in data.get("disable") or []:
            if name not in rules:
                raise ConfigError(f"{source}: cannot disable unknown rule {name!r}")
            del rules[name]
        new: dict[str, Rule] = {}
        for i, raw in enumerate(data.get("rules") or []):
            try:
                rule = Rule.model_validate(raw)
            except ValidationError as e:
                err = e.errors()[0]
                where = "".join(f"{p}: " for p in err["loc"][:1])
                raise ConfigError(f"{source}: rule #{i + 1}: {where}{err['msg']}") from None
            if add_only and (taken := _taken(rule.name, base, new)):
                raise ConfigError(
                    f"{source}: rule #{i + 1}: name {rule.name!r} is {taken}; a campaign or "
                    "task policy may only add rules, with names of their own"
                )
            new[rule.name] = rule
        if add_only:
            return cls(list(rules.values()), (*added, *new.values()))
        return cls(list((rules | new).values()), added)

    def with_overrides(self, path: Path) -> Policy:
        """This policy with an override file applied (rules by name, `disable`)."""
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read policy file {path}: {e.strerror}") from None
        return Policy.from_yaml(text, source=str(path), base=self)

    def evaluate(self, tool: str, args: Mapping[str, Any]) -> Verdict:
        text = action_text(tool, args)
        best: Rule | None = None
        for rule in self._all:
            if rule.matches(tool, args, text) and (
                best is None or _SEVERITY[rule.decision] > _SEVERITY[best.decision]
            ):
                best = rule
        short = text if len(text) <= 300 else text[:297] + "..."
        return Verdict(best.decision if best else Decision.allow, best, short)


def _taken(name: str, base: Policy | None, new: Mapping[str, Rule]) -> str:
    """Why an added rule may not have this name ("" when it may)."""
    if name in _builtin().rules:
        return "a built-in rule"
    if name in new:
        return "used twice"
    if base is not None and (name in base.rules or any(r.name == name for r in base.added)):
        return "already a rule of an earlier policy file"
    return ""


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with `rules:` and/or `disable:`")
    unknown = set(data) - {"rules", "disable"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; use rules, disable")
    for key in ("rules", "disable"):
        if data.get(key) is not None and not isinstance(data[key], list):
            raise ConfigError(f"{source}: `{key}` must be a list")
    return data


@functools.cache
def _builtin() -> Policy:
    from corral.orchestrator.policy.builtin import BUILTIN_RULES

    return Policy.from_yaml(BUILTIN_RULES, source="built-in rules")


def load_policy(*overrides: Path | None) -> Policy:
    """The built-in rules with each existing override file applied in order."""
    policy = Policy.builtin()
    for path in overrides:
        if path is not None and path.exists():
            policy = policy.with_overrides(path)
    return policy
