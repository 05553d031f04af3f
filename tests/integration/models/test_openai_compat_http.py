"""OpenAICompatModel against the fake provider over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from corral.domain import Completion, Message, ProviderError, ToolCall, ToolSpec, Usage
from corral.models import ContextWindowExceeded, OpenAICompatModel
from corral.ports import Model
from corral.testing import FakeProvider, RawReply

USER = [Message(role="system", content="you fix bugs"), Message(role="user", content="fix it")]
BASH = ToolSpec(
    name="bash",
    description="run a command",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(api_key="sk-test") as fp:
        yield fp


def _model(fp: FakeProvider, **kwargs: object) -> OpenAICompatModel:
    kwargs.setdefault("api_key", "sk-test")
    return OpenAICompatModel(fp.base_url, "fake-model", **kwargs)  # type: ignore[arg-type]


async def _error(model: OpenAICompatModel) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await model.complete(USER, [BASH])
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(model.name)
    return info.value


async def test_tool_calls_usage_cost_and_the_request_on_the_wire(provider: FakeProvider) -> None:
    provider.add_script(
        {
            "thought": "list files",
            "tool_calls": [{"tool": "bash", "args": {"command": "ls -la"}}],
            "usage": {"input_tokens": 2_000_000, "output_tokens": 1_000_000},
        }
    )
    model = _model(provider, price_in_per_mtok=1.0, price_out_per_mtok=4.0, max_tokens=256)
    assert isinstance(model, Model)
    history = [
        *USER,
        Message(role="assistant", tool_calls=(ToolCall(id="c0", name="bash", arguments={}),)),
        Message(role="tool", content="README.md", tool_call_id="c0"),
    ]
    completion = await model.complete(history, [BASH])
    assert completion.content == "list files"
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("bash", {"command": "ls -la"})
    ]
    assert completion.usage == Usage(input_tokens=2_000_000, output_tokens=1_000_000)
    assert completion.cost_usd == pytest.approx(6.0)
    assert completion.latency_s > 0
    assert completion.model == "fake-model"

    (sent,) = provider.requests
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "fake-model"
    assert sent.body["max_tokens"] == 256
    assert sent.body["tools"][0]["function"]["name"] == "bash"
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent.body["messages"][3]["tool_call_id"] == "c0"
    await model.aclose()


async def test_default_reply_is_finish_and_usage_is_estimated(provider: FakeProvider) -> None:
    async with _model(provider) as model:
        completion = await model.complete(USER, [])
    assert completion.tool_calls[0].name == "finish"
    assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0
    assert "tools" not in provider.bodies[0]


async def test_rpm_limit_gives_429_with_retry_after() -> None:
    with FakeProvider(rpm=2) as fp:
        async with _model(fp) as model:
            await model.complete(USER, [])
            await model.complete(USER, [])
            error = await _error(model)
        assert error.status == 429
        # 2 requests per minute refill one every 30 s.
        assert error.retry_after is not None and 25 < error.retry_after <= 30
        assert fp.stats.rate_limited == 1 and fp.stats.completed == 2
        async with httpx.AsyncClient() as client:
            raw = await client.post(
                f"{fp.base_url}/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            )
        assert raw.status_code == 429
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        assert int(raw.headers["retry-after"]) >= 25


async def test_tpm_limit_counts_tokens() -> None:
    with FakeProvider(tpm=100) as fp:
        async with _model(fp) as model:
            big = [Message(role="user", content="x" * 300)]  # about 80 tokens
            await model.complete(big, [])
            with pytest.raises(ProviderError) as info:
                await model.complete(big, [])
        assert info.value.status == 429
        assert "tokens" in str(info.value)
        assert info.value.retry_after is not None and info.value.retry_after > 0


async def test_injected_429_carries_retry_after(provider: FakeProvider) -> None:
    provider.fault_retry_after = 2.5
    provider.fail_next(429)
    async with _model(provider) as model:
        error = await _error(model)
        assert (error.status, error.retry_after) == (429, 2.5)
        # The fault was used up; the next call succeeds.
        assert (await model.complete(USER, [])).tool_calls[0].name == "finish"


async def test_quota_exhaustion_is_a_429_without_retry_after(provider: FakeProvider) -> None:
    provider.fail_next("quota")
    async with _model(provider) as model:
        error = await _error(model)
    assert (error.status, error.retry_after) == (429, None)
    assert "insufficient_quota" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(provider: FakeProvider, status: int) -> None:
    provider.fail_next(status)
    async with _model(provider) as model:
        error = await _error(model)
    assert error.status == status
    assert f"HTTP {status}" in str(error) and "injected failure" in str(error)
    assert type(error) is ProviderError


async def test_malformed_bodies(provider: FakeProvider) -> None:
    provider.fail_next("malformed", "no_choices")
    async with _model(provider) as model:
        assert "body is not JSON" in str(await _error(model))
        assert "no choices" in str(await _error(model))


async def test_dropped_connection_and_refused_port(provider: FakeProvider) -> None:
    provider.fail_next("disconnect")
    async with _model(provider) as model:
        error = await _error(model)
    assert error.status is None and "cannot reach" in str(error)

    with FakeProvider() as gone:
        url = gone.base_url
    async with OpenAICompatModel(url, "m", timeout=2) as model:
        error = await _error(model)
    assert error.status is None and "cannot reach" in str(error)


async def test_wrong_or_missing_key_is_401(provider: FakeProvider) -> None:
    async with _model(provider, api_key="sk-wrong") as model:
        error = await _error(model)
    assert error.status == 401 and "Incorrect API key" in str(error)
    async with OpenAICompatModel(provider.base_url, "fake-model") as model:
        assert (await _error(model)).status == 401
    assert provider.stats.unauthorized == 2


async def test_latency_is_measured_and_timeout_is_enforced() -> None:
    with FakeProvider(latency=0.3) as fp:
        async with _model(fp) as model:
            completion = await model.complete(USER, [])
        assert completion.latency_s >= 0.3
        async with _model(fp, timeout=0.1) as model:
            error = await _error(model)
        assert "timeout" in str(error) and error.status is None


async def test_context_window_exceeded_is_distinguishable() -> None:
    with FakeProvider(context_window=50) as fp:
        async with _model(fp) as model:
            with pytest.raises(ContextWindowExceeded) as info:
                await model.complete([Message(role="user", content="y" * 1000)], [])
    assert info.value.status == 400
    assert "maximum context length is 50 tokens" in str(info.value)


async def test_respond_hook_sees_the_request_and_can_fail() -> None:
    def respond(request: object) -> Completion | int:
        body = getattr(request, "body")  # noqa: B009
        if body["messages"][-1]["content"] == "fail":
            return 503
        return Completion(content=f"you said {body['messages'][-1]['content']}")

    with FakeProvider(respond=respond) as fp:
        async with _model(fp) as model:
            echo = await model.complete([Message(role="user", content="hi")], [])
            assert echo.content == "you said hi"
            with pytest.raises(ProviderError) as info:
                await model.complete([Message(role="user", content="fail")], [])
    assert info.value.status == 503


async def test_bad_tool_arguments_from_the_provider_become_parse_errors() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "bash", "arguments": "{"}},
            {"id": "b", "type": "function", "function": {"name": "bash", "arguments": "[]"}},
        ],
    }
    body = {"id": "r", "model": "m", "choices": [{"index": 0, "message": message}]}
    with FakeProvider(script=[RawReply(body)]) as fp:
        async with _model(fp) as model:
            completion = await model.complete(USER, [])
    first, second = completion.tool_calls
    assert first.arguments == {} and "not valid JSON" in (first.parse_error or "")
    assert second.arguments == {} and "got array" in (second.parse_error or "")


async def test_raw_error_body_without_json(provider: FakeProvider) -> None:
    provider.add_script(RawReply(b"upstream exploded\n<html>", status=502))
    async with _model(provider) as model:
        error = await _error(model)
    assert error.status == 502 and "upstream exploded <html>" in str(error)


async def test_reuses_one_client_and_leaves_a_given_client_open(provider: FakeProvider) -> None:
    async with httpx.AsyncClient() as client:
        model = _model(provider, client=client)
        await model.complete(USER, [])
        await model.aclose()
        assert not client.is_closed
        await model.complete(USER, [])
    owned = _model(provider)
    await owned.complete(USER, [])
    first = owned._client
    await owned.complete(USER, [])
    assert owned._client is first
    await owned.aclose()
    assert first is not None and first.is_closed
