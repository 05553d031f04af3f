"""LiteLLMModel for real, against the fake provider over HTTP (no network, offline cost map)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from corral.domain import Message, ProviderError, ToolSpec, Usage
from corral.models import ContextWindowExceeded, LiteLLMModel
from corral.testing import FakeProvider

USER = [Message(role="user", content="fix the failing test")]
BASH = ToolSpec(
    name="bash",
    description="run a command",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(api_key="sk-test") as fp:
        yield fp


def _model(fp: FakeProvider, name: str = "openai/fake-model", **kwargs: object) -> LiteLLMModel:
    kwargs.setdefault("api_key", "sk-test")
    return LiteLLMModel(name, api_base=fp.base_url, **kwargs)  # type: ignore[arg-type]


async def _error(model: LiteLLMModel) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await model.complete(USER, [BASH])
    assert "\n" not in str(info.value)
    return info.value


async def test_tool_calls_and_usage_through_litellm(provider: FakeProvider) -> None:
    provider.add_script(
        {
            "thought": "run the tests",
            "tool_calls": [{"tool": "bash", "args": {"command": "pytest -q"}}],
            "usage": {"input_tokens": 120, "output_tokens": 30},
        }
    )
    model = _model(provider, max_tokens=64)
    completion = await model.complete(USER, [BASH])
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert completion.content == "run the tests"
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("bash", {"command": "pytest -q"})
    ]
    assert completion.usage == Usage(input_tokens=120, output_tokens=30)
    assert completion.cost_usd == 0.0  # not in the cost map
    assert completion.latency_s > 0
    (sent,) = provider.requests
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "fake-model"
    assert sent.body["tools"][0]["function"]["name"] == "bash"
    assert sent.body["max_tokens"] == 64


async def test_known_model_gets_cost_and_context_window_from_the_offline_map(
    provider: FakeProvider,
) -> None:
    provider.add_script({"thought": "hi", "usage": {"input_tokens": 1000, "output_tokens": 1000}})
    model = _model(provider, "openai/gpt-4o")
    completion = await model.complete(USER, [])
    assert completion.cost_usd > 0
    assert model.context_window == 128_000
    assert _model(provider, "openai/fake-model").context_window == 128_000  # fallback
    assert LiteLLMModel("x/y", context_window=5).context_window == 5


async def test_429_maps_to_provider_error_with_retry_after_and_no_retries(
    provider: FakeProvider,
) -> None:
    provider.fault_retry_after = 3
    provider.fail_next(429)
    error = await _error(_model(provider))
    assert error.status == 429
    assert error.retry_after == 3
    assert len(provider.requests) == 1  # neither litellm nor the SDK retried


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_not_retried(provider: FakeProvider, status: int) -> None:
    provider.fail_next(status)
    error = await _error(_model(provider))
    assert error.status == status
    assert len(provider.requests) == 1


async def test_auth_failure(provider: FakeProvider) -> None:
    error = await _error(_model(provider, api_key="sk-wrong"))
    assert error.status == 401
    assert "AuthenticationError" in str(error)


async def test_context_window_exceeded() -> None:
    with FakeProvider(context_window=20) as fp:
        model = LiteLLMModel("openai/fake-model", api_base=fp.base_url, api_key="k")
        with pytest.raises(ContextWindowExceeded) as info:
            await model.complete([Message(role="user", content="z" * 500)], [])
    assert info.value.status == 400


async def test_unreachable_provider_has_no_status() -> None:
    with FakeProvider() as gone:
        url = gone.base_url
    model = LiteLLMModel("openai/fake-model", api_base=url, api_key="k", timeout=5)
    error = await _error(model)
    assert error.status is None


@pytest.mark.parametrize("fault", ["malformed", "no_choices"])
async def test_malformed_bodies_become_provider_errors(provider: FakeProvider, fault: str) -> None:
    provider.fail_next(fault)  # type: ignore[arg-type]
    error = await _error(_model(provider))
    assert error.status == 500  # LiteLLM's label for an unusable answer
    assert len(provider.requests) == 1


async def test_timeout_has_no_status() -> None:
    with FakeProvider(latency=2) as fp:
        model = LiteLLMModel("openai/fake-model", api_base=fp.base_url, api_key="k", timeout=0.2)
        error = await _error(model)
    assert error.status is None
    assert "Timeout" in str(error)
