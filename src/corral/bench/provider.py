"""The benchmark's fake provider in a process of its own, as a real provider would be.

In-process, the provider's JSON work and its thread's grabs of the GIL were charged to
whichever system was being measured (corral or mini-swe-agent). Out of process, each side
pays only for its own calls over real HTTP, the same code path as a remote provider.

    with ProviderProcess(steps=10, latency=1.0) as provider:
        ... provider.base_url ...
    provider.requests   # how many requests it answered

The child prints its base URL when it is listening, serves until its stdin closes, then
prints its request count and exits.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import TracebackType

from corral.bench.workload import Script
from corral.orchestrator.heap import tune_for_fleet
from corral.testing import FakeProvider

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


async def _serve(steps: int, latency: float, rpm: int | None, tpm: int | None) -> int:
    script = Script(steps)
    provider = FakeProvider(respond=script, latency=latency, rpm=rpm, tpm=tpm)
    script.provider = provider
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    served = asyncio.ensure_future(
        provider.serve_forever(on_ready=lambda p: print(p.base_url, flush=True))
    )
    await stdin_closed
    served.cancel()
    await asyncio.gather(served, return_exceptions=True)
    return provider.stats.requests


if __name__ == "__main__":
    steps_arg, latency_arg, rpm_arg, tpm_arg = sys.argv[1:5]
    tune_for_fleet()  # it stands in for a remote service: its heap is not corral's
    served_requests = asyncio.run(
        _serve(int(steps_arg), float(latency_arg), int(rpm_arg) or None, int(tpm_arg) or None)
    )
    print(json.dumps({"requests": served_requests}), flush=True)
