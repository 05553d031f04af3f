"""A real local HTTP server that speaks OpenAI chat-completions, for tests and benchmarks.

Real sockets, real headers, real 429s: adapters and the gateway are exercised exactly as
against a hosted provider, with no network and no key. It runs in its own thread with
its own event loop, so it serves while a test's loop (or a sync test) waits on it:

    with FakeProvider(script=[...], rpm=60) as fp:
        model = OpenAICompatModel(fp.base_url, "fake-model")

Per request, in order: auth (401), body checks (400), injected faults, context window
(400 context_length_exceeded), rate limits (429), latency, then the next scripted reply
(or the `respond` hook, or a default `finish` tool call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from corral.domain import Completion, ToolCall, Usage
from corral.gateway.http11 import HttpRequest, HttpResponse, HttpServer
from corral.models.openai_format import completion_to_openai
from corral.models.scripted import ScriptedTurn
from corral.testing.fake_parts import (
    FakeStats,
    Fault,
    LatencySampler,
    RawReply,
    RecordedRequest,
    Reply,
    error_response,
    estimate_tokens,
    exponential,
    fault_response,
    json_response,
    retry_headers,
    uniform,
)
from corral.testing.ratelimit import RateLimiter

__all__ = [
    "FakeProvider",
    "FakeStats",
    "Fault",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "exponential",
    "main",
    "run_fake_provider",
    "uniform",
]


class FakeProvider:
    """An OpenAI-compatible server on 127.0.0.1 (port 0 = any free port)."""

    def __init__(
        self,
        script: Sequence[Reply] = (),
        *,
        respond: Callable[[RecordedRequest], Reply | Fault | None] | None = None,
        default: Reply | None = None,
        model: str = "fake-model",
        api_key: str | None = None,
        latency: float | LatencySampler = 0.0,
        seed: int | None = 0,
        usage: Usage | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        failures: Sequence[Fault] = (),
        fault_retry_after: float = 1.0,
        context_window: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.respond = respond
        self.default = default
        self.model = model
        self.api_key = api_key
        self.latency = latency
        self.usage = usage
        self.fault_retry_after = fault_retry_after
        self.context_window = context_window
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.stats = FakeStats()
        self.rpm, self.tpm = rpm, tpm
        self._limiter = RateLimiter(rpm, tpm)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque(script)
        self._faults: deque[Fault] = deque(failures)
        self._count = 0
        self._server: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- control from tests -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as base URL: `http://127.0.0.1:PORT/v1`."""
        if self._server is None:
            raise RuntimeError("the fake provider is not running; use start() or `with`")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of every chat-completions request, in arrival order."""
        return [r.body for r in list(self.requests) if r.path.endswith("/chat/completions")]

    def fail_next(self, *faults: Fault) -> None:
        """Make the next requests fail, one fault each (after auth and body checks, before
        rate limits; a failed request uses no scripted reply)."""
        with self._lock:
            self._faults.extend(faults)

    def add_script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def set_limits(self, rpm: int | None = None, tpm: int | None = None) -> None:
        """Replace the rate limits (full buckets)."""
        with self._lock:
            self.rpm, self.tpm = rpm, tpm
            self._limiter = RateLimiter(rpm, tpm)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                loop.close()

        self._thread = threading.Thread(target=run, name="corral-fake-provider", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeProvider:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    async def serve_forever(self, on_ready: Callable[[FakeProvider], None] | None = None) -> None:
        """Serve in the *current* event loop until cancelled (for the CLI)."""
        await self._open()
        if on_ready is not None:
            on_ready(self)
        try:
            await asyncio.Event().wait()
        finally:
            await self._close()

    async def _open(self) -> None:
        self._server = HttpServer(self._handle, host=self.host, port=self.port)
        await self._server.start()
        self.port = self._server.port

    async def _close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    # --- serving ------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/")
        if path in ("/v1/models", "/models"):
            if request.method != "GET":
                return error_response(405, "use GET", "invalid_request_error")
            return self._authorized(request) or json_response(self._models())
        if path in ("/v1/chat/completions", "/chat/completions"):
            if request.method != "POST":
                return error_response(405, "use POST", "invalid_request_error")
            return await self._chat(request)
        return error_response(
            404, f"no route {request.method} {request.path}", "invalid_request_error"
        )

    def _models(self) -> dict[str, Any]:
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "corral"}
        return {"object": "list", "data": [entry]}

    def _authorized(self, request: HttpRequest) -> HttpResponse | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("api-key")
        if given == self.api_key:
            return None
        self.stats.unauthorized += 1
        return error_response(
            401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
        )

    async def _chat(self, request: HttpRequest) -> HttpResponse:
        try:
            body: Any = json.loads(request.body)
        except ValueError:
            body = None
        with self._lock:
            self._count += 1
            index = self._count
        record = RecordedRequest(
            index, request.method, request.path, request.headers, body, time.time()
        )
        self.requests.append(record)
        self.stats.requests += 1
        denied = self._authorized(request)
        if denied is not None:
            return denied
        problem = self._check_body(body)
        if problem:
            self.stats.bad_requests += 1
            return error_response(400, problem, "invalid_request_error")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            return self._fault(fault, index)
        # Sized only when something reads it: re-encoding a fleet's whole histories was
        # most of the benchmark provider's CPU, which a remote provider would not charge
        # to the machine being measured.
        limited = self.context_window is not None or self.tpm is not None
        prompt_tokens = _prompt_tokens(body) if limited else None
        if (
            self.context_window is not None
            and prompt_tokens is not None
            and prompt_tokens > self.context_window
        ):
            self.stats.bad_requests += 1
            return error_response(
                400,
                f"This model's maximum context length is {self.context_window} tokens. "
                f"However, your messages resulted in {prompt_tokens} tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            )
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        estimate = (prompt_tokens or 0) + (max_tokens if isinstance(max_tokens, int) else 0)
        admission = self._limiter.admit(estimate)
        if not admission.allowed:
            self.stats.rate_limited += 1
            wait = admission.retry_after if math.isfinite(admission.retry_after) else 60.0
            return error_response(
                429,
                f"Rate limit reached for {admission.reason} per minute; try again in {wait:.3f}s",
                "rate_limit_exceeded" if admission.reason == "requests" else "tokens",
                "rate_limit_exceeded",
                **admission.headers,
                **retry_headers(wait),
            )
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            await self._sleep()
        finally:
            self.stats.in_flight -= 1
        reply = self._next_reply(record)
        if isinstance(reply, RawReply):
            self.stats.completed += 1
            raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            return HttpResponse(reply.status, raw, headers=dict(reply.headers))
        if not isinstance(reply, Completion):
            return self._fault(reply, index)
        usage = self._usage(reply, body, prompt_tokens)
        self._limiter.correct(usage.input_tokens + usage.output_tokens - estimate)
        served = reply.model_copy(update={"usage": usage})
        model = body.get("model") if isinstance(body.get("model"), str) else self.model
        self.stats.completed += 1
        payload = completion_to_openai(served, model=model, response_id=f"chatcmpl-fake-{index}")
        return json_response(payload, self._limiter.headers())

    @staticmethod
    def _check_body(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "'messages' must be a non-empty list"
        if body.get("stream"):
            return "the fake provider does not stream; send stream=false"
        if "tools" in body and not isinstance(body["tools"], list):
            return "'tools' must be a list"
        return None

    async def _sleep(self) -> None:
        delay = self.latency(self._rng) if callable(self.latency) else self.latency
        if delay > 0:
            await asyncio.sleep(delay)

    def _next_reply(self, record: RecordedRequest) -> Completion | RawReply | Fault:
        chosen: Reply | Fault | None = self.respond(record) if self.respond else None
        if chosen is None:
            with self._lock:
                chosen = self._script.popleft() if self._script else self.default
        if chosen is None:
            call = ToolCall(
                id=f"call_{record.index}_0", name="finish", arguments={"message": "done"}
            )
            return Completion(tool_calls=(call,))
        if isinstance(chosen, int | str):
            return chosen
        if isinstance(chosen, Completion | RawReply):
            return chosen
        return ScriptedTurn.model_validate(chosen).to_completion(record.index)

    def _usage(self, reply: Completion, body: dict[str, Any], prompt_tokens: int | None) -> Usage:
        if reply.usage != Usage():
            return reply.usage
        if self.usage is not None:
            return self.usage
        if prompt_tokens is None:
            prompt_tokens = _prompt_tokens(body)
        out = reply.content + json.dumps([c.arguments for c in reply.tool_calls])
        return Usage(input_tokens=prompt_tokens, output_tokens=estimate_tokens(out))

    def _fault(self, fault: Fault, index: int) -> HttpResponse:
        self.stats.faults += 1
        return fault_response(fault, index, self.fault_retry_after)


def _prompt_tokens(body: dict[str, Any]) -> int:
    tools = estimate_tokens(body["tools"]) if body.get("tools") else 0
    return estimate_tokens(body["messages"]) + tools


def run_fake_provider(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    rpm: int | None = None,
    tpm: int | None = None,
    latency: float | LatencySampler = 0.0,
    api_key: str | None = None,
    model: str = "fake-model",
    on_ready: Callable[[FakeProvider], None] | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C; what `corral fake-provider` calls."""
    provider = FakeProvider(
        host=host, port=port, rpm=rpm, tpm=tpm, latency=latency, api_key=api_key, model=model
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(provider.serve_forever(on_ready))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m corral.testing.fake_provider --port 8000 --rpm 60 --latency 0.2`."""
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible fake provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--tpm", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args(argv)

    def ready(fp: FakeProvider) -> None:
        print(f"fake provider serving {fp.base_url} (model {fp.model})", flush=True)

    run_fake_provider(
        host=args.host,
        port=args.port,
        rpm=args.rpm,
        tpm=args.tpm,
        latency=args.latency,
        api_key=args.api_key,
        model=args.model,
        on_ready=ready,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
