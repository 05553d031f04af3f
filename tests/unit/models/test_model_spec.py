"""Model spec strings: every form resolves, every mistake is one line naming the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral.domain import ConfigError, UnknownModel
from corral.models import (
    LiteLLMModel,
    OpenAICompatModel,
    ScriptedModel,
    check_model_spec,
    parse_model_spec,
)
from corral.models.spec import PROVIDER_ENV


def _error(spec: str, env: dict[str, str], kind: type[Exception] = ConfigError) -> str:
    with pytest.raises(kind) as info:
        parse_model_spec(spec, env=env)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_scripted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- tool_calls: [{tool: finish, args: {message: hi}}]\n")
    model = parse_model_spec(f"scripted:{path}", env={})
    assert isinstance(model, ScriptedModel)
    assert model.name == f"scripted:{path}"


def test_scripted_missing_file_fails_now(tmp_path: Path) -> None:
    message = _error(f"scripted:{tmp_path}/missing.yaml", {})
    assert "missing.yaml does not exist" in message


def test_scripted_bad_file_fails_now(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- tool_calls: [{tool: finish, oops: 1}]\n")
    assert "field 'tool_calls[0].oops'" in _error(f"scripted:{path}", {})


def test_scripted_without_path() -> None:
    assert "names no file" in _error("scripted:", {}, UnknownModel)


def test_openai_compatible() -> None:
    model = parse_model_spec(
        "openai-compatible:http://localhost:8000/v1#qwen-coder",
        env={"OPENAI_COMPATIBLE_API_KEY": "sk-local"},
    )
    assert isinstance(model, OpenAICompatModel)
    assert model.base_url == "http://localhost:8000/v1"
    assert model.model == "qwen-coder"
    assert model.name == "openai-compatible:http://localhost:8000/v1#qwen-coder"
    assert model._api_key == "sk-local"
    assert "sk-local" not in repr(model)


def test_openai_compatible_key_is_optional() -> None:
    model = parse_model_spec("openai-compatible:https://gw.example/v1#m", env={})
    assert isinstance(model, OpenAICompatModel)
    assert model._api_key is None


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("openai-compatible:localhost:8000/v1#m", "must start with http:// or https://"),
        ("openai-compatible:ftp://host/v1#m", "must start with http:// or https://"),
        ("openai-compatible:http://host:8000/v1", "names no model after '#'"),
        ("openai-compatible:http://host:8000/v1#", "names no model after '#'"),
    ],
)
def test_openai_compatible_errors(spec: str, fragment: str) -> None:
    message = _error(spec, {}, UnknownModel)
    assert fragment in message and spec in message


def test_provider_models_resolve_to_litellm_with_the_key_from_env() -> None:
    model = parse_model_spec("openai/gpt-4o", env={"OPENAI_API_KEY": "sk-1"})
    assert isinstance(model, LiteLLMModel)
    assert model.name == "openai/gpt-4o"
    assert model._api_key == "sk-1"
    assert "sk-1" not in repr(model)
    gemini = parse_model_spec("gemini/gemini-2.5-pro", env={"GOOGLE_API_KEY": "g"})
    assert isinstance(gemini, LiteLLMModel) and gemini._api_key == "g"


def test_ollama_needs_no_key_and_takes_its_base_from_env() -> None:
    model = parse_model_spec("ollama/llama3", env={"OLLAMA_API_BASE": "http://gpu:11434"})
    assert isinstance(model, LiteLLMModel)
    assert model.api_base == "http://gpu:11434"


def test_missing_key_is_one_line_naming_the_variable() -> None:
    assert _error("openai/gpt-4o", {}) == (
        "model 'openai/gpt-4o' needs OPENAI_API_KEY set in the environment"
    )
    assert _error("anthropic/claude-sonnet-4-5", {"OPENAI_API_KEY": "x"}) == (
        "model 'anthropic/claude-sonnet-4-5' needs ANTHROPIC_API_KEY set in the environment"
    )
    # An empty value counts as missing.
    assert "OPENAI_API_KEY" in _error("openai/gpt-4o", {"OPENAI_API_KEY": ""})


def test_multi_variable_providers_name_all_of_them() -> None:
    message = _error("azure/my-deploy", {"AZURE_API_KEY": "k"})
    assert "AZURE_API_KEY and AZURE_API_BASE and AZURE_API_VERSION all set" in message
    assert "GOOGLE_API_KEY" in _error("gemini/gemini-2.5-pro", {})
    assert (
        parse_model_spec("bedrock/anthropic.claude-3", env={"AWS_PROFILE": "dev"}).name
        == "bedrock/anthropic.claude-3"
    )


def test_every_listed_provider_resolves_when_its_variables_are_set() -> None:
    for provider, alternatives in PROVIDER_ENV.items():
        env = dict.fromkeys(alternatives[0], "value")
        assert isinstance(parse_model_spec(f"{provider}/some-model", env=env), LiteLLMModel)


@pytest.mark.parametrize(
    "spec", ["gpt-4o", "nosuchprovider/model", "", "   ", "scripted", "http://x/v1#m"]
)
def test_unknown_specs_list_the_accepted_forms(spec: str) -> None:
    message = _error(spec, {}, UnknownModel)
    assert "scripted:PATH" in message
    assert "openai-compatible:http://HOST:PORT/v1#MODEL" in message
    assert "PROVIDER/MODEL" in message and "anthropic" in message


def test_provider_without_model_name() -> None:
    assert "names no model after 'openai/'" in _error(
        "openai/", {"OPENAI_API_KEY": "k"}, UnknownModel
    )


def test_upper_case_provider_gets_a_hint() -> None:
    assert "(openai/gpt-4o)" in _error("OpenAI/gpt-4o", {}, UnknownModel)


def test_check_model_spec_returns_the_name_and_raises_the_same_errors() -> None:
    assert check_model_spec("openai/gpt-4o", env={"OPENAI_API_KEY": "k"}) == "openai/gpt-4o"
    with pytest.raises(ConfigError):
        check_model_spec("openai/gpt-4o", env={})


def test_resolution_does_not_import_litellm(fresh_python: Callable[[str], str]) -> None:
    out = fresh_python(
        "import sys; from corral.models import parse_model_spec;"
        "parse_model_spec('openai/gpt-4o', env={'OPENAI_API_KEY': 'k'});"
        "print('litellm' in sys.modules)"
    )
    assert out.strip() == "False"
