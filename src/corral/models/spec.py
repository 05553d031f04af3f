"""Model spec strings → Model objects, with every mistake caught before anything runs.

    scripted:PATH                               a ScriptedModel (file validated now)
    openai-compatible:http://host:port/v1#name  an OpenAICompatModel
    PROVIDER/MODEL                              a LiteLLMModel (provider key checked now)

Resolution never imports litellm or opens a connection, so it is cheap to call at startup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from corral.domain import ConfigError, UnknownModel
from corral.models.litellm_model import LiteLLMModel
from corral.models.openai_compat import OpenAICompatModel
from corral.models.scripted import ScriptedModel
from corral.ports import Model

__all__ = [
    "OPENAI_COMPATIBLE_KEY_VAR",
    "PROVIDER_ENV",
    "check_model_spec",
    "missing_provider_env",
    "parse_model_spec",
]

OPENAI_COMPATIBLE_KEY_VAR = "OPENAI_COMPATIBLE_API_KEY"

# provider → alternatives; each alternative is the set of variables that must all be set.
# An empty alternative means the provider needs nothing (a local server).
PROVIDER_ENV: dict[str, tuple[tuple[str, ...], ...]] = {
    "openai": (("OPENAI_API_KEY",),),
    "anthropic": (("ANTHROPIC_API_KEY",),),
    "gemini": (("GEMINI_API_KEY",), ("GOOGLE_API_KEY",)),
    "mistral": (("MISTRAL_API_KEY",),),
    "groq": (("GROQ_API_KEY",),),
    "deepseek": (("DEEPSEEK_API_KEY",),),
    "xai": (("XAI_API_KEY",),),
    "openrouter": (("OPENROUTER_API_KEY",),),
    "together_ai": (("TOGETHERAI_API_KEY",), ("TOGETHER_API_KEY",)),
    "fireworks_ai": (("FIREWORKS_AI_API_KEY",), ("FIREWORKS_API_KEY",)),
    "azure": (("AZURE_API_KEY", "AZURE_API_BASE", "AZURE_API_VERSION"),),
    "bedrock": (
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_PROFILE",),
        ("AWS_BEARER_TOKEN_BEDROCK",),
    ),
    "vertex_ai": (("VERTEXAI_PROJECT", "VERTEXAI_LOCATION"),),
    "ollama": ((),),
    "ollama_chat": ((),),
    "cohere": (("COHERE_API_KEY",),),
    "perplexity": (("PERPLEXITYAI_API_KEY",),),
    "cerebras": (("CEREBRAS_API_KEY",),),
    "deepinfra": (("DEEPINFRA_API_KEY",),),
    "huggingface": (("HUGGINGFACE_API_KEY",), ("HF_TOKEN",)),
}

# Local servers whose address may come from the environment.
_API_BASE_VAR = {"ollama": "OLLAMA_API_BASE", "ollama_chat": "OLLAMA_API_BASE"}

_FORMS = (
    "scripted:PATH, openai-compatible:http://HOST:PORT/v1#MODEL, or PROVIDER/MODEL "
    f"with PROVIDER one of {', '.join(sorted(PROVIDER_ENV))}"
)


def missing_provider_env(provider: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """The variables still needed for `provider` (empty when one alternative is complete)."""
    alternatives = PROVIDER_ENV[provider]
    for names in alternatives:
        if all(env.get(n) for n in names):
            return ()
    return alternatives[0]


def _needs(spec: str, provider: str, missing: tuple[str, ...]) -> str:
    first = " and ".join(missing)
    others = [" and ".join(a) for a in PROVIDER_ENV[provider][1:]]
    alt = f" (or {' or '.join(others)})" if others else ""
    verb = "set" if len(missing) == 1 else "all set"
    return f"model {spec!r} needs {first}{alt} {verb} in the environment"


def _scripted(spec: str, rest: str) -> ScriptedModel:
    if not rest:
        raise UnknownModel(f"model spec {spec!r} names no file: use scripted:PATH")
    path = Path(rest).expanduser()
    if not path.is_file():
        raise ConfigError(f"model spec {spec!r}: scripted model file {rest} does not exist")
    return ScriptedModel(path)


def _openai_compatible(spec: str, rest: str, env: Mapping[str, str]) -> OpenAICompatModel:
    url, sep, model = rest.partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnknownModel(
            f"model spec {spec!r}: the URL must start with http:// or https:// "
            "as in openai-compatible:http://HOST:PORT/v1#MODEL"
        )
    if not sep or not model.strip():
        raise UnknownModel(
            f"model spec {spec!r} names no model after '#': "
            "use openai-compatible:http://HOST:PORT/v1#MODEL"
        )
    return OpenAICompatModel(url, model.strip(), api_key=env.get(OPENAI_COMPATIBLE_KEY_VAR) or None)


def _litellm(spec: str, provider: str, name: str, env: Mapping[str, str]) -> LiteLLMModel:
    if not name.strip():
        raise UnknownModel(f"model spec {spec!r} names no model after '{provider}/'")
    missing = missing_provider_env(provider, env)
    if missing:
        raise ConfigError(_needs(spec, provider, missing))
    # Single-key providers get their key passed explicitly, so `env` (not only
    # os.environ) decides what is used; the others read their variables themselves.
    alternatives = PROVIDER_ENV[provider]
    api_key = None
    if len(alternatives[0]) == 1:
        found = next((a[0] for a in alternatives if len(a) == 1 and env.get(a[0])), None)
        api_key = env.get(found) if found else None
    base_var = _API_BASE_VAR.get(provider)
    api_base = env.get(base_var) if base_var else None
    return LiteLLMModel(spec, api_key=api_key, api_base=api_base or None)


def parse_model_spec(spec: str, *, env: Mapping[str, str] | None = None) -> Model:
    """Resolve a spec string; raises UnknownModel or ConfigError with a one-line message."""
    env = os.environ if env is None else env
    spec = spec.strip()
    if not spec:
        raise UnknownModel(f"empty model spec: use {_FORMS}")
    if spec.startswith("scripted:"):
        return _scripted(spec, spec.removeprefix("scripted:"))
    if spec.startswith("openai-compatible:"):
        return _openai_compatible(spec, spec.removeprefix("openai-compatible:"), env)
    provider, sep, name = spec.partition("/")
    if sep and provider in PROVIDER_ENV:
        return _litellm(spec, provider, name, env)
    if sep and provider.lower() in PROVIDER_ENV:
        raise UnknownModel(
            f"unknown model spec {spec!r}: provider names are lower case "
            f"({provider.lower()}/{name})"
        )
    raise UnknownModel(f"unknown model spec {spec!r}: use {_FORMS}")


def check_model_spec(spec: str, *, env: Mapping[str, str] | None = None) -> str:
    """Validate a spec without using the model; returns the model's name."""
    return parse_model_spec(spec, env=env).name
