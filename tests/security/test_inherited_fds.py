"""A bwrap sandbox holds no socket of the host: the launcher's own control socket (which
carries every sandbox's launch request and its fds) once leaked into every sandbox."""

from __future__ import annotations

from pathlib import Path

from .conftest import start_box


async def test_no_process_in_a_bwrap_sandbox_holds_a_host_socket(repo: Path) -> None:
    box = await start_box("bwrap", repo)
    try:
        result = await box.exec("sleep 30 & ls -l /proc/[0-9]*/fd/ 2>/dev/null; kill %1", 20)
        assert "-> " in result.output  # the listing did run
        assert "socket:" not in result.output, result.output
    finally:
        await box.close()
