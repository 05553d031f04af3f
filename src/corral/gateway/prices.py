"""Prices: what a call may cost before it is made (the token estimate is in `wire`).

Prices come from LiteLLM's offline cost map (imported with LITELLM_LOCAL_MODEL_COST_MAP
set, so nothing is fetched) unless the deployment's config gives one; a model with
neither is a startup error, because a budget cannot be enforced on an unknown price.
"""

from __future__ import annotations

import contextlib
import io

from corral.domain import ConfigError
from corral.gateway.config import Deployment, Price
from corral.models.litellm_model import import_litellm

__all__ = ["litellm_price", "resolve_price"]


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
