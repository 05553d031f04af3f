"""Gateway configuration: deployments (with their limits and prices), routes, budgets.

Frozen pydantic models with `extra="forbid"`, so a typo in a YAML file is a one-line
ConfigError at startup rather than a surprise mid-campaign.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from corral.domain import ConfigError, Frozen
from corral.models.openai_format import one_line

__all__ = [
    "Deployment",
    "GatewayConfig",
    "Price",
    "RateLimits",
    "RouteMatch",
    "RouteRule",
    "load_config",
    "parse_config",
]


class RateLimits(Frozen):
    """Per-deployment limits, as the provider applies them (None = not limited)."""

    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)  # input + output tokens per minute
    input_tpm: int | None = Field(default=None, gt=0)
    output_tpm: int | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=None, gt=0)


class Price(Frozen):
    """Dollars per million tokens; overrides LiteLLM's cost map (local or custom models)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class Deployment(Frozen):
    """One model at one provider account, under one name the rest of corral uses."""

    name: str = Field(min_length=1)
    # A corral model spec: PROVIDER/MODEL, openai-compatible:URL#MODEL or scripted:PATH.
    model: str = Field(min_length=1)
    limits: RateLimits = RateLimits()
    price: Price | None = None
    max_output_tokens: int = Field(default=4096, gt=0)
    context_window: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    # Deployments sharing an account share its quota: one exhausted pauses them all.
    # Default: the provider prefix or the base URL of the spec.
    account: str | None = None
    # For openai-compatible specs: the variable holding the key (checked at startup).
    api_key_env: str | None = None

    @property
    def account_name(self) -> str:
        if self.account:
            return self.account
        if self.model.startswith("openai-compatible:"):
            return self.model.removeprefix("openai-compatible:").partition("#")[0]
        return self.model.partition("/")[0] if "/" in self.model else self.model


class RouteMatch(Frozen):
    """Which tasks a rule applies to; every given field must match (empty = any task)."""

    kind: str | None = None
    labels: tuple[str, ...] = ()  # all of these must be on the task
    min_attempt: int = Field(default=1, ge=1)
    max_attempt: int | None = Field(default=None, ge=1)
    min_repo_files: int | None = Field(default=None, ge=0)
    max_repo_files: int | None = Field(default=None, ge=0)


class RouteRule(Frozen):
    """A task that matches gets `profile` and `models`, cheap first."""

    name: str = Field(min_length=1)
    match: RouteMatch = RouteMatch()
    profile: str = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    # On attempt n, start from models[n-1] (the stronger ones) instead of models[0].
    escalate: bool = True


class GatewayConfig(Frozen):
    deployments: tuple[Deployment, ...] = Field(min_length=1)
    routes: tuple[RouteRule, ...] = ()
    # Budget limits in dollars by scope key: "global", "team:X", "campaign:Y", ...
    budgets: dict[str, float] = Field(default_factory=dict)
    jitter: float = Field(default=0.2, ge=0, le=1)  # fraction added to Retry-After
    default_retry_after_s: float = Field(default=1.0, gt=0)  # a 429 without the header
    quota_pause_s: float = Field(default=60.0, gt=0)  # an account out of quota
    cooldown_failures: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    transient_retries: int = Field(default=1, ge=0)  # per deployment, before falling back
    default_deadline_s: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _names_resolve(self) -> GatewayConfig:
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique: {', '.join(dupes)}")
        for rule in self.routes:
            unknown = [m for m in rule.models if m not in names]
            if unknown:
                raise ValueError(
                    f"route {rule.name!r} names unknown deployments: {', '.join(unknown)}"
                )
        return self

    def deployment(self, name: str) -> Deployment:
        for d in self.deployments:
            if d.name == name:
                return d
        raise KeyError(name)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: Any, *, source: str = "gateway config") -> GatewayConfig:
    """Validate a mapping; any problem is one ConfigError line naming the field."""
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _where(tuple(err["loc"]))
        at = f", {where}" if where else ""
        raise ConfigError(f"{source}{at}: {one_line(err['msg'])}") from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read a YAML (or JSON) gateway config file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"gateway config {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"gateway config {p} cannot be read: {one_line(str(exc))}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"gateway config {p}: invalid YAML: {one_line(str(exc))}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"gateway config {p}: expected a mapping with 'deployments'")
    return parse_config(data, source=f"gateway config {p}")
