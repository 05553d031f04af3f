"""OpenAICompatModel: any server that speaks /chat/completions (vLLM, Ollama, gateways).

Plain httpx, no SDK: one AsyncClient reused across calls, no hidden retries (the gateway
owns retry policy), and every failure mapped to ProviderError with status and
Retry-After so rate limiting can slow the whole fleet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from corral.domain import Completion, Message, ProviderError, ToolSpec
from corral.models.errors import ContextWindowExceeded, cost_usd, looks_like_context_overflow
from corral.models.openai_format import (
    messages_to_openai,
    one_line,
    parse_response,
    parse_retry_after,
    tools_to_openai,
)

__all__ = ["OpenAICompatModel", "error_from_response"]


def _error_text(response: httpx.Response) -> str:
    """The provider's own error message if the body has one, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            code = err.get("code")
            return f"{err['message']} ({code})" if code else str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return response.text


def error_from_response(source: str, response: httpx.Response) -> ProviderError:
    """An HTTP error response → ProviderError (ContextWindowExceeded when it says so)."""
    text = _error_text(response)
    status = response.status_code
    message = f"{source}: HTTP {status}: {one_line(text) or response.reason_phrase}"
    retry_after = parse_retry_after(response.headers)
    # Kept on the error so the gateway can read `x-ratelimit-*` from a 429.
    headers = {k.lower(): v for k, v in response.headers.items()}
    if status in (400, 413) and looks_like_context_overflow(text):
        return ContextWindowExceeded(
            message, status=status, retry_after=retry_after, headers=headers
        )
    return ProviderError(message, status=status, retry_after=retry_after, headers=headers)


class OpenAICompatModel:
    """POSTs `{base_url}/chat/completions`; name is `openai-compatible:{base_url}#{model}`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120,
        max_tokens: int | None = None,
        context_window: int = 128_000,
        price_in_per_mtok: float = 0.0,
        price_out_per_mtok: float = 0.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai-compatible:{self.base_url}#{model}"
        self.context_window = context_window
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.price_in_per_mtok = price_in_per_mtok
        self.price_out_per_mtok = price_out_per_mtok
        self._api_key = api_key
        self._client = client
        self._owns_client = client is None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatModel({self.base_url!r}, {self.model!r})"

    def _get_client(self) -> httpx.AsyncClient:
        # Created on first use, inside the caller's event loop.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def request_body(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages_to_openai(messages)}
        if tools:
            body["tools"] = tools_to_openai(tools)
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self.base_url}/chat/completions"
        started = time.monotonic()
        try:
            response = await self._get_client().post(
                url,
                json=self.request_body(messages, tools),
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            raise ProviderError(
                f"{self.name}: no answer within {self.timeout:g}s (timeout)"
            ) from None
        except httpx.HTTPError as exc:
            detail = one_line(str(exc)) or type(exc).__name__
            raise ProviderError(f"{self.name}: cannot reach {url}: {detail}") from None
        latency = time.monotonic() - started
        if response.status_code >= 400:
            raise error_from_response(self.name, response)
        try:
            body = response.json()
        except ValueError:
            snippet = one_line(response.text, 120)
            raise ProviderError(
                f"{self.name}: malformed response: body is not JSON: {snippet}",
                status=response.status_code,
            ) from None
        completion = parse_response(body, source=self.name)
        return completion.model_copy(
            update={
                "cost_usd": cost_usd(
                    completion.usage, self.price_in_per_mtok, self.price_out_per_mtok
                ),
                "latency_s": latency,
                "model": completion.model or self.model,
            }
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this model created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> OpenAICompatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
