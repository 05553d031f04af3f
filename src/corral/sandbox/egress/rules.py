"""Which hosts a sandbox may reach, and which addresses are never reachable.

A profile names hosts, not addresses: `pypi.org` (exact) or `*.example.org` (any name
*under* example.org, never example.org itself nor badexample.org). The proxy resolves an
allowed name once, on the host, and refuses it when any of its addresses is loopback,
private, link-local (cloud metadata lives there), unique-local or otherwise not global;
it then connects to the address it checked, so a second lookup cannot swap it (DNS
rebinding). Raw IP targets are refused outright: a rule can only name a host.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from corral.domain import ConfigError, Frozen

METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def normalize_host(host: str) -> str:
    """Lower-case, without a trailing dot or IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(normalize_host(host))
    except ValueError:
        return False
    return True


def host_matches(pattern: str, host: str) -> bool:
    """`*.example.org` matches any name under example.org (one or more labels), not
    example.org itself and not badexample.org; anything else must match exactly."""
    pattern, host = normalize_host(pattern), normalize_host(host)
    if not host or not all(c in _LABEL_CHARS or c == "." for c in host) or ".." in host:
        return False
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.org"
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def address_problem(address: str, *, allow_private: bool = False) -> str | None:
    """Why a sandbox may not connect to `address`, or None when it may.

    `allow_private` exists for tests that serve on 127.0.0.1; metadata addresses stay
    refused even then.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is link-local"
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip} is not a unicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is loopback"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


class Credential(Frozen):
    """A header the proxy adds to plain-HTTP requests for matching hosts.

    The value is read from the host's environment when the profile is loaded; it is
    never passed into a sandbox.
    """

    host: str
    header: str = "Authorization"
    value: str = Field(default="", repr=False)
    value_env: str | None = None

    def resolved(self, env: Mapping[str, str]) -> Credential:
        if self.value or not self.value_env:
            return self
        if self.value_env not in env:
            raise ConfigError(f"egress credential for {self.host}: ${self.value_env} is not set")
        return self.model_copy(update={"value": env[self.value_env]})


class EgressProfile(Frozen):
    """What one task's sandbox may reach. The empty profile (the default) reaches nothing."""

    name: str = "default"
    allow: tuple[str, ...] = ()
    ports: tuple[int, ...] = (80, 443)
    byte_cap: int = Field(default=200 * 1024 * 1024, ge=0)
    credentials: tuple[Credential, ...] = ()
    # Test-only: lets 127.0.0.1 servers stand in for real hosts.
    allow_private_addresses: bool = False

    @field_validator("allow")
    @classmethod
    def _valid_patterns(cls, allow: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in allow:
            bare = normalize_host(pattern).removeprefix("*.")
            if not bare or "*" in bare or is_ip_literal(bare) or not host_matches(bare, bare):
                raise ValueError(
                    f"egress rule {pattern!r}: give a host name like pypi.org or "
                    "*.example.org (no IP addresses, no bare wildcards)"
                )
        return tuple(normalize_host(p) for p in allow)

    @property
    def closed(self) -> bool:
        return not self.allow

    def rule_for(self, host: str) -> str | None:
        """The rule that allows `host`, or None."""
        if is_ip_literal(host):
            return None
        return next((p for p in self.allow if host_matches(p, host)), None)

    def credential_for(self, host: str) -> Credential | None:
        return next((c for c in self.credentials if host_matches(c.host, host)), None)


CLOSED = EgressProfile()


def load_profiles(path: Path, env: Mapping[str, str] | None = None) -> dict[str, EgressProfile]:
    """Profiles from YAML: `{profiles: {name: {allow: [...], ports: [...], ...}}}`.

    `default` is always the closed profile unless the file defines it.
    """
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read egress profiles {path}: {e}") from None
    raw = (data or {}).get("profiles", {}) if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping `profiles: {{name: {{allow: [...]}}}}`")
    env = os.environ if env is None else env
    out: dict[str, EgressProfile] = {"default": CLOSED}
    for name, body in raw.items():
        try:
            profile = EgressProfile.model_validate({"name": str(name), **(body or {})})
        except (ValidationError, TypeError) as e:
            first = str(e).splitlines()[0:3]
            raise ConfigError(f"{path}: profile {name!r}: {' '.join(first)}") from None
        creds = tuple(c.resolved(env) for c in profile.credentials)
        out[str(name)] = profile.model_copy(update={"credentials": creds})
    return out
