"""The benchmark's fake provider in a process of its own, as a real provider would be.

In-process, the provider's JSON work and its thread's grabs of the GIL were charged to
whichever system was being measured (corral or mini-swe-agent). Out of process, each side
pays only for its own calls over real HTTP, the same code path as a remote provider.

    with ProviderProcess(steps=10, latency=1.0) as provider:
        ... provider.base_url ...
    provider.requests   # how many requests it answered

The child prints its base URL when it is listening, serves until its stdin closes, then
prints its request count and exits.

Without rate limits it answers through `LeanScript`: the same replies as the test suite's
`FakeProvider` with the workload's `Script`, read from the request's bytes instead of its
decoded JSON. A remote provider's work costs the benchmarked machine nothing; decoding
every agent's whole history here was most of this process's CPU, which the fleet and
mini-swe-agent then ran short of. With limits, `FakeProvider` enforces them.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from types import TracebackType

from corral.bench.workload import AGENT_RE, Script, reply
from corral.gateway.http11 import HttpRequest, HttpResponse, HttpServer
from corral.models.openai_format import completion_to_openai
from corral.orchestrator.heap import tune_for_fleet
from corral.testing import FakeProvider
from corral.testing.fake_parts import error_response, json_response

_READY_TIMEOUT_S = 60


class ProviderProcess:
    def __init__(
        self, *, steps: int, latency: float, rpm: int | None = None, tpm: int | None = None
    ) -> None:
        self.argv = [sys.executable, "-m", "corral.bench.provider", str(steps), str(latency)]
        self.argv += [str(rpm or 0), str(tpm or 0)]
        self.base_url = ""
        self.requests = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ProviderProcess:
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http"):
            self._proc.kill()
            raise RuntimeError(f"the fake provider process did not start: {line!r}")
        self.base_url = line
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            out, _ = proc.communicate(input="", timeout=_READY_TIMEOUT_S)
            self.requests = int(json.loads(out.strip().splitlines()[-1])["requests"])
        except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError):
            proc.kill()
            proc.wait()


_TOOL_TURN = re.compile(rb'"role"\s*:\s*"tool"')
_FINISH_TOOL = re.compile(rb'"name"\s*:\s*"finish"')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]*)"')
_AGENT = re.compile(AGENT_RE.pattern.encode())


class LeanScript:
    """The workload's replies (`Script`'s), served from the request's bytes."""

    def __init__(self, steps: int, latency: float) -> None:
        self.steps = steps
        self.latency = latency
        self.requests = 0

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions") or request.method != "POST":
            return error_response(404, f"no route {request.method} {request.path}", "invalid")
        self.requests += 1
        index = self.requests
        body = request.body
        step = len(_TOOL_TURN.findall(body))
        agent = _AGENT.search(body)
        model = _MODEL.search(body)
        completion = reply(
            agent.group(1).decode() if agent else "unknown", step,
            last=step >= self.steps - 1, finish=_FINISH_TOOL.search(body) is not None,
            index=index,
        )  # fmt: skip
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        payload = completion_to_openai(
            completion,
            model=model.group(1).decode() if model else "fake-model",
            response_id=f"chatcmpl-fake-{index}",
        )
        return json_response(payload)


async def _serve(steps: int, latency: float, rpm: int | None, tpm: int | None) -> int:
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    if rpm or tpm:
        script = Script(steps)
        provider = FakeProvider(respond=script, latency=latency, rpm=rpm, tpm=tpm)
        script.provider = provider
        served = asyncio.ensure_future(
            provider.serve_forever(on_ready=lambda p: print(p.base_url, flush=True))
        )
        await stdin_closed
        served.cancel()
        await asyncio.gather(served, return_exceptions=True)
        return provider.stats.requests
    lean = LeanScript(steps, latency)
    server = HttpServer(lean.handle, host="127.0.0.1", port=0)
    await server.start()
    print(f"http://127.0.0.1:{server.port}/v1", flush=True)
    try:
        await stdin_closed
    finally:
        await server.close()
    return lean.requests


if __name__ == "__main__":
    steps_arg, latency_arg, rpm_arg, tpm_arg = sys.argv[1:5]
    tune_for_fleet()  # it stands in for a remote service: its heap is not corral's
    served_requests = asyncio.run(
        _serve(int(steps_arg), float(latency_arg), int(rpm_arg) or None, int(tpm_arg) or None)
    )
    print(json.dumps({"requests": served_requests}), flush=True)
