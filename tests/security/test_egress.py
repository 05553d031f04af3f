"""With an egress profile open, the proxy is the only way out, and it lets through only
the allowlisted host on its allowed port: bwrap and Docker alike. (`test_isolation`'s
network cases also run with a profile open: direct connections and DNS still fail.)"""

from __future__ import annotations

import pytest

from corral.sandbox import BaseSandbox
from corral.sandbox.egress import EgressChannel

from .conftest import EGRESS_BACKENDS, TOKEN, Allowed
from .helpers import py

pytestmark = pytest.mark.parametrize("net_box", EGRESS_BACKENDS, indirect=True)

# Every URL through the relay (an empty no_proxy: even 127.0.0.1 goes to the proxy).
_FETCH = py(
    "import sys, urllib.error as e, urllib.request as u\n"
    "for url in sys.argv[1:]:\n"
    "    try:\n"
    "        r = u.urlopen(url, timeout=10)\n"
    '        print(url, "STATUS", r.status, r.read().decode().strip())\n'
    "    except e.HTTPError as x:\n"
    '        print(url, "STATUS", x.code, x.read().decode().strip())\n'
    "    except Exception as x:\n"
    '        print(url, "ERROR", type(x).__name__, x)'
)


def _channel(box: BaseSandbox) -> EgressChannel:
    channel = getattr(box, "egress", None)
    assert isinstance(channel, EgressChannel)
    return channel


async def _fetch(box: BaseSandbox, *urls: str) -> dict[str, str]:
    result = await box.exec(f"no_proxy= NO_PROXY= {_FETCH} {' '.join(urls)}", timeout=60)
    lines = {line.split(" ", 1)[0]: line for line in result.output.splitlines() if " " in line}
    return {url: lines.get(url, result.output) for url in urls}


async def test_allowed_host_is_reached_with_a_credential_the_sandbox_never_sees(
    net_box: BaseSandbox, allowed_host: Allowed
) -> None:
    url = f"http://allowed.test:{allowed_host.port}/"
    assert "STATUS 200 allowed host says hi" in (await _fetch(net_box, url))[url]
    assert allowed_host.seen[-1]["authorization"] == TOKEN
    # Not in the environment, any process's environ, or any file the sandbox can read;
    # the fixture also checks that no output ever carried it.
    needle = TOKEN.split()[1][:-1]  # a prefix, so the command line does not hold it
    probe = await net_box.exec(
        f"env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
        f"grep -rsl {needle} /run /workspace /tmp /home /etc; echo done",
        timeout=30,
    )
    assert needle not in probe.output.replace(f"grep -rsl {needle}", "")
    assert probe.output.rstrip().endswith("done")


async def test_proxy_denies_everything_off_the_allowlist(
    net_box: BaseSandbox, allowed_host: Allowed
) -> None:
    port = allowed_host.port
    denied = [
        "http://example.com/",  # not on the allowlist
        f"http://127.0.0.1:{port}/",  # raw IPs, even the stand-in's own
        "http://1.1.1.1/",
        "http://127.0.0.1:5432/",  # localhost services: PostgreSQL, Redis
        "http://localhost:6379/",
        f"http://allowed.test:{5432}/",  # the allowed host on a port not allowed
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata, by IP and by name
        f"http://metadata.test:{port}/",
        "http://metadata.google.internal/",  # a name nobody resolves for the sandbox
        "https://pypi.org/",  # CONNECT to a host not on the allowlist
    ]
    seen = len(allowed_host.seen)
    answers = await _fetch(net_box, *denied)
    for url, line in answers.items():
        assert "STATUS 200" not in line and "says hi" not in line, line
        assert "403" in line, line
        if url.startswith("http:"):
            assert "corral egress proxy: denied" in line, line
    assert len(allowed_host.seen) == seen  # nothing reached the stand-in
    records = _channel(net_box).records
    assert len(records) >= len(denied) and not any(r.allowed for r in records)
    hosts = {r.host for r in records}
    assert {"example.com", "127.0.0.1", "169.254.169.254", "metadata.test", "pypi.org"} <= hosts
