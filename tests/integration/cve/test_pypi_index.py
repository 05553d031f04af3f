"""The PyPI JSON client against a local fake: yanked files, pre-releases, outages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.cve.conftest import SNAPSHOT, FakeServer, Route

from corral.workflows.cve import FixPlan, OsvDatabase, PyPIIndex, plan_fixes, scan_repo


def files(yanked: bool = False) -> list[dict[str, Any]]:
    return [{"filename": "x.whl", "yanked": yanked}, {"filename": "x.tar.gz", "yanked": yanked}]


def pypi_route(method: str, path: str, body: Any) -> tuple[int, Any]:
    if path == "/pypi/pyyaml/json":
        return 200, {
            "info": {"name": "PyYAML"},
            "releases": {
                "5.3.1": files(),
                "5.4b2": files(),
                "5.4": files(yanked=True),
                "5.4.1": files(),
                "5.4.2": [],  # no files: not installable
                "6.0": files(),
                "not-a-version!": files(),
            },
        }
    return 404, {"message": "Not Found"}


def run_plan(repo: Path, index: PyPIIndex) -> FixPlan:
    async def go() -> FixPlan:
        db = OsvDatabase.open(SNAPSHOT)
        async with index:
            return await plan_fixes(await scan_repo(repo, db), db, index)

    return asyncio.run(go())


def test_plan_uses_the_index(serve: Callable[[Route], FakeServer], tmp_path: Path) -> None:
    server = serve(pypi_route)
    (tmp_path / "requirements.txt").write_text("PyYAML==5.3.1\n")
    p = run_plan(tmp_path, PyPIIndex(f"{server.url}/pypi"))
    [u] = p.upgrades
    assert (u.to_version, u.verified_by_index) == ("5.4.1", True)
    assert [path for _, path, _ in server.requests] == ["/pypi/pyyaml/json"]


def test_release_list_parsing(serve: Callable[[Route], FakeServer]) -> None:
    server = serve(pypi_route)

    async def go() -> list[tuple[str, bool]] | None:
        async with PyPIIndex(f"{server.url}/pypi") as index:
            rel = await index.releases("PyYAML")
            return None if rel is None else [(str(r.version), r.installable) for r in rel]

    assert asyncio.run(go()) == [
        ("5.3.1", True),
        ("5.4b2", False),
        ("5.4", False),
        ("5.4.1", True),
        ("6.0", True),
    ]


def test_index_outage_falls_back_to_advisories(closed_port_url: str, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("PyYAML==5.3.1\n")
    index = PyPIIndex(f"{closed_port_url}/pypi", timeout=2)
    p = run_plan(tmp_path, index)
    [u] = p.upgrades
    assert (u.to_version, u.verified_by_index) == ("5.4", False)
    assert not p.index_used and index.failures


def test_release_files_digests_and_why_not(
    serve: Callable[[Route], FakeServer], closed_port_url: str
) -> None:
    def route(method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/pypi/pyyaml/5.4/json":
            digest = {"sha256": "A" * 64, "md5": "0" * 32}
            return 200, {"urls": [{"filename": "PyYAML-5.4.tar.gz", "url": "u", "size": 7,
                                   "digests": digest}]}  # fmt: skip
        if path == "/pypi/pyyaml/5.5/json":
            return 200, {"urls": [{"filename": "PyYAML-5.5.tar.gz", "digests": {}}]}
        return 404, {"message": "Not Found"}

    server = serve(route)

    async def go(url: str, name: str, version: str) -> Any:
        async with PyPIIndex(url, timeout=2) as index:
            return await index.files(name, version)

    [f] = asyncio.run(go(f"{server.url}/pypi", "PyYAML", "5.4"))
    assert (f.filename, f.sha256, f.size, f.url) == ("PyYAML-5.4.tar.gz", "a" * 64, 7, "u")
    assert asyncio.run(go(f"{server.url}/pypi", "pyyaml", "9.9")) == "the index answered HTTP 404"
    bad = asyncio.run(go(f"{server.url}/pypi", "pyyaml", "5.5"))
    assert bad == "unusable index answer: PyYAML-5.5.tar.gz has no sha256 digest"
    down = asyncio.run(go(f"{closed_port_url}/pypi", "pyyaml", "5.4"))
    assert down == "index unreachable (ConnectError)"
