"""LLM adapters behind the `Model` protocol, and the spec strings that pick one.

Nothing here imports litellm at import time; `LiteLLMModel` does so on first use.
"""

from corral.models.errors import ContextWindowExceeded, cost_usd, looks_like_context_overflow
from corral.models.litellm_model import LiteLLMModel
from corral.models.openai_compat import OpenAICompatModel
from corral.models.replay import ReplayModel
from corral.models.scripted import ScriptedModel, ScriptedToolCall, ScriptedTurn, load_turns
from corral.models.spec import PROVIDER_ENV, check_model_spec, parse_model_spec

__all__ = [
    "PROVIDER_ENV",
    "ContextWindowExceeded",
    "LiteLLMModel",
    "OpenAICompatModel",
    "ReplayModel",
    "ScriptedModel",
    "ScriptedToolCall",
    "ScriptedTurn",
    "check_model_spec",
    "cost_usd",
    "load_turns",
    "looks_like_context_overflow",
    "parse_model_spec",
]
