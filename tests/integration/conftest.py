"""Shared by the integration suites: a docs site for egress profiles to open."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[int]:
    """A docs site on all interfaces, reached by the machine's own name (real resolver)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "guide.txt").write_text("the answer is 42\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def docs_profile(home: Path, port: int) -> str:
    """Write HOME/egress.yaml with a `docs` profile opening the docs site; its guide's URL.

    The machine's own name, because `localhost` is in the sandbox's no_proxy list. Test
    only: the site is on this machine, which real profiles may never reach.
    """
    name = socket.gethostname()
    home.mkdir(parents=True, exist_ok=True)
    (home / "egress.yaml").write_text(
        f"profiles:\n  docs:\n    allow: [{name}]\n"
        f"    ports: [{port}]\n    allow_private_addresses: true\n"
    )
    return f"http://{name}:{port}/guide.txt"


def fetch_command(url: str) -> str:
    """A bash command reading `url` through the sandbox's proxy (no curl in the images)."""
    return f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}', timeout=10).read().decode())\""
