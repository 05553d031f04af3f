"""How an egress channel enters a sandbox (bwrap or Docker): two read-only binds, an
env, a relay.

One recipe for both backends: the proxy's Unix socket and the relay script are bound
read-only under /run/corral; the relay is started before the agent's shell (and spared
by the shell driver's process sweeps); `http_proxy`/`https_proxy` point at it. Only the
spelling of the binds differs (`--ro-bind` for bwrap, `-v ...:ro` for Docker). Nothing
here carries a secret.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from corral.sandbox.egress import relay
from corral.sandbox.procs import NamespaceScope

SOCKET_INNER = relay.SOCKET
RELAY_INNER = "/run/corral/egress-relay.py"
PROXY_URL = f"http://127.0.0.1:{relay.PORT}"
_PYTHON = "/usr/bin/python3"


def binds(socket_path: Path) -> list[tuple[str, str]]:
    """(host path, inner path) pairs to bind read-only into the sandbox."""
    return [(str(socket_path), SOCKET_INNER), (str(Path(relay.__file__).resolve()), RELAY_INNER)]


def bwrap_args(socket_path: Path) -> list[str]:
    return [arg for host, inner in binds(socket_path) for arg in ("--ro-bind", host, inner)]


def docker_args(socket_path: Path) -> list[str]:
    return [arg for host, inner in binds(socket_path) for arg in ("-v", f"{host}:{inner}:ro")]


def proxy_env() -> dict[str, str]:
    """What clients inside read to find the proxy (upper and lower case: both are used)."""
    env: dict[str, str] = {}
    for name in ("http_proxy", "https_proxy"):
        env[name] = env[name.upper()] = PROXY_URL
    env["no_proxy"] = env["NO_PROXY"] = "localhost,127.0.0.1,::1"
    return env


def wrap_argv(argv: list[str]) -> list[str]:
    """Start the relay (it returns once listening), then become the shell as before."""
    start = f'{_PYTHON} -I -S {RELAY_INNER} </dev/null >/dev/null 2>&1; exec "$@"'
    return ["/bin/sh", "-c", start, "corral-egress", *argv]


def relay_pids(scope: NamespaceScope) -> set[int]:
    """Inner pids of the relay, so a sweep after a timed-out command leaves it alive."""
    found: set[int] = set()
    for host, inner in scope.members():
        with contextlib.suppress(OSError):
            if RELAY_INNER.encode() in Path(f"/proc/{host}/cmdline").read_bytes():
                found.add(inner)
    return found
