"""Prices and token estimates: what a call may cost before it is made.

Prices come from LiteLLM's offline cost map (imported with LITELLM_LOCAL_MODEL_COST_MAP
set, so nothing is fetched) unless the deployment's config gives one; a model with
neither is a startup error, because a budget cannot be enforced on an unknown price.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Sequence

from corral.domain import ConfigError, Message, ToolSpec
from corral.gateway.config import Deployment, Price
from corral.models.litellm_model import import_litellm
from corral.models.openai_format import messages_to_openai, tools_to_openai

__all__ = ["estimate_prompt_tokens", "litellm_price", "resolve_price"]

# Conservative on purpose: providers count about 4 characters a token; 3 over-reserves
# a little, so a budget reservation is an upper bound of what the call can cost.
CHARS_PER_TOKEN = 3
PER_MESSAGE_OVERHEAD = 4


def estimate_prompt_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    """An upper estimate of the prompt's tokens, from its wire JSON."""
    text = json.dumps(messages_to_openai(messages), separators=(",", ":"))
    if tools:
        text += json.dumps(tools_to_openai(tools), separators=(",", ":"))
    return math.ceil(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_OVERHEAD * len(messages)


def _lookup_names(spec: str) -> list[str]:
    if spec.startswith("openai-compatible:"):
        return [spec.partition("#")[2]]
    return [spec, spec.partition("/")[2]] if "/" in spec else [spec]


def litellm_price(spec: str) -> Price | None:
    """The price in LiteLLM's offline map, or None if the model is not in it."""
    litellm = import_litellm()
    for name in _lookup_names(spec):
        if not name:
            continue
        try:  # litellm prints a banner on unknown models; keep the console clean
            with contextlib.redirect_stdout(io.StringIO()):
                info = litellm.get_model_info(name)
        except Exception:
            continue
        cost_in = info.get("input_cost_per_token") if isinstance(info, dict) else None
        cost_out = info.get("output_cost_per_token") if isinstance(info, dict) else None
        if isinstance(cost_in, int | float) and isinstance(cost_out, int | float):
            return Price(input_per_mtok=cost_in * 1e6, output_per_mtok=cost_out * 1e6)
    return None


def resolve_price(deployment: Deployment) -> Price:
    if deployment.price is not None:
        return deployment.price
    if deployment.model.startswith("scripted:"):
        return Price(input_per_mtok=0.0, output_per_mtok=0.0)
    found = litellm_price(deployment.model)
    if found is None:
        raise ConfigError(
            f"deployment {deployment.name!r}: no price known for model {deployment.model!r}; "
            "set price: {input_per_mtok: X, output_per_mtok: Y} in its config"
        )
    return found
