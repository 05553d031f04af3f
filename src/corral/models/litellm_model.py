"""LiteLLMModel: every hosted provider LiteLLM knows, behind our small Model protocol.

LiteLLM is imported lazily (it takes seconds) and always with its offline cost map, so
nothing here reaches the network except the model call itself. LiteLLM's and the
OpenAI SDK's own retries are switched off: the gateway decides when to retry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import httpx

from corral.domain import Completion, Message, ProviderError, ToolSpec
from corral.models.errors import ContextWindowExceeded, looks_like_context_overflow
from corral.models.openai_format import (
    messages_to_openai,
    one_line,
    parse_response,
    parse_retry_after,
    tools_to_openai,
)

__all__ = ["DEFAULT_CONTEXT_WINDOW", "LiteLLMModel", "import_litellm"]

DEFAULT_CONTEXT_WINDOW = 128_000


def import_litellm() -> ModuleType:
    """Import litellm offline: its cost map must come from the package, never the web."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    module: ModuleType = litellm
    return module


def _no_answer(exc: BaseException) -> bool:
    """True when the request never got an HTTP answer (connection refused, timeout).

    LiteLLM reports a refused connection as a 500 InternalServerError; the real cause is
    further down the exception chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.TransportError) or type(current).__name__ in (
            "APIConnectionError",
            "APITimeoutError",
            "Timeout",
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _retry_after(exc: Exception) -> float | None:
    # LiteLLM keeps the provider's headers in `litellm_response_headers`; its `response`
    # is often a stand-in without them.
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if isinstance(headers, httpx.Headers):
            value = parse_retry_after(headers)
        elif isinstance(headers, Mapping):
            value = parse_retry_after({str(k).lower(): str(v) for k, v in headers.items()})
        else:
            continue
        if value is not None:
            return value
    return None


def _map_error(source: str, exc: Exception, litellm: ModuleType) -> ProviderError:
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    retry_after = _retry_after(exc)
    text = one_line(str(getattr(exc, "message", None) or exc)) or type(exc).__name__
    message = f"{source}: {type(exc).__name__}: {text}"
    if isinstance(exc, litellm.ContextWindowExceededError) or (
        status in (400, 413) and looks_like_context_overflow(text)
    ):
        return ContextWindowExceeded(message, status=status, retry_after=retry_after)
    if _no_answer(exc):
        # LiteLLM labels these 500 or 408, but no HTTP answer came back: no status.
        return ProviderError(message, status=None, retry_after=retry_after)
    return ProviderError(message, status=status, retry_after=retry_after)


class LiteLLMModel:
    """`model` is a LiteLLM model string such as `openai/gpt-4o` or `anthropic/claude-...`."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 120,
        max_tokens: int | None = None,
        context_window: int | None = None,
    ) -> None:
        self.model = model
        self.name = model
        self.api_base = api_base
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._context_window = context_window

    def __repr__(self) -> str:  # never show the key
        return f"LiteLLMModel({self.model!r}, api_base={self.api_base!r})"

    @property
    def context_window(self) -> int:
        """Looked up in LiteLLM's offline map on first use (128k when it is not listed)."""
        if self._context_window is None:
            self._context_window = self._lookup_context_window()
        return self._context_window

    @context_window.setter
    def context_window(self, value: int) -> None:
        self._context_window = value

    def _lookup_context_window(self) -> int:
        litellm = import_litellm()
        try:
            info = litellm.get_model_info(self.model)
        except Exception:
            return DEFAULT_CONTEXT_WINDOW
        for key in ("max_input_tokens", "max_tokens"):
            value = info.get(key) if isinstance(info, dict) else None
            if isinstance(value, int) and value > 0:
                return value
        return DEFAULT_CONTEXT_WINDOW

    def _cost(self, litellm: ModuleType, response: Any) -> float:
        try:
            cost = litellm.completion_cost(completion_response=response, model=self.model)
        except Exception:
            return 0.0  # a model missing from the offline map costs what config says: 0
        return float(cost) if isinstance(cost, int | float) and cost >= 0 else 0.0

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages_to_openai(messages),
            "timeout": self.timeout,
            "num_retries": 0,
            "max_retries": 0,
        }
        if tools:
            kwargs["tools"] = tools_to_openai(tools)
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        started = time.monotonic()
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise _map_error(self.name, exc, litellm) from None
        latency = time.monotonic() - started
        try:
            body = response.model_dump()
        except Exception as exc:
            raise ProviderError(f"{self.name}: malformed response: {one_line(str(exc))}") from None
        completion = parse_response(body, source=self.name)
        return completion.model_copy(
            update={
                "cost_usd": self._cost(litellm, response),
                "latency_s": latency,
                "model": completion.model or self.model,
            }
        )
