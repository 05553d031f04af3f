"""Helpers: a gateway config pointing at real fake-provider servers."""

from __future__ import annotations

from typing import Any

from corral.domain import Message
from corral.gateway import GatewayConfig, parse_config
from corral.testing import FakeProvider

PRICE = {"input_per_mtok": 10.0, "output_per_mtok": 30.0}


def deployment(name: str, fp: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": f"openai-compatible:{fp.base_url}#fake-model",
        "price": PRICE,
        "max_output_tokens": 64,
        "account": name,
        **extra,
    }


def config(*deployments: dict[str, Any], **extra: Any) -> GatewayConfig:
    return parse_config({"deployments": list(deployments), **extra})


def ask(i: int = 0) -> list[Message]:
    return [Message(role="user", content=f"question {i}: " + "x" * 200)]
