"""The OSV API client against a local fake, and failover to the snapshot when it is down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.cve.conftest import SNAPSHOT, FakeServer, Route

from corral.workflows.cve import (
    AdvisorySourceUnavailable,
    FailoverSource,
    OsvApi,
    OsvDatabase,
    scan_repo,
)


def record(package: str, vuln_id: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (SNAPSHOT / "vulns" / package / f"{vuln_id}.yaml").read_text()
    )
    return data


def osv_route(page_two: bool = False) -> Route:
    vulns = {
        "PYSEC-2023-192": record("urllib3", "PYSEC-2023-192"),
        "PYSEC-2023-212": record("urllib3", "PYSEC-2023-212"),
        "PYSEC-2021-13": record("flask-caching", "PYSEC-2021-13"),
    }

    def route(method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/v1/querybatch":
            results = []
            for q in body["queries"]:
                name = q["package"]["name"]
                assert q["package"]["ecosystem"] == "PyPI"
                if name == "urllib3" and page_two and "page_token" not in q:
                    results.append({"vulns": [{"id": "PYSEC-2023-192"}], "next_page_token": "p2"})
                elif name == "urllib3" and page_two:
                    results.append({"vulns": [{"id": "PYSEC-2023-212"}]})
                elif name == "urllib3":
                    results.append({"vulns": [{"id": "PYSEC-2023-192"}, {"id": "PYSEC-2023-212"}]})
                elif name == "flask-caching":
                    results.append({"vulns": [{"id": "PYSEC-2021-13"}]})
                else:
                    results.append({})
            return 200, {"results": results}
        if method == "GET" and path.startswith("/v1/vulns/"):
            vid = path.rsplit("/", 1)[1]
            return (200, vulns[vid]) if vid in vulns else (404, {"message": "not found"})
        return 404, {}

    return route


@pytest.mark.parametrize("paged", [False, True])
def test_api_matches_like_the_snapshot(
    serve: Callable[[Route], FakeServer], tmp_path: Path, paged: bool
) -> None:
    server = serve(osv_route(page_two=paged))
    (tmp_path / "requirements.txt").write_text("urllib3==2.0.5\nFlask-Caching==1.10.1\nsix==1.0\n")
    report = asyncio.run(scan_repo(tmp_path, OsvApi(server.url)))
    assert sorted(f.advisory for f in report.findings) == ["PYSEC-2023-192", "PYSEC-2023-212"]
    fetched = sorted(p for m, p, _ in server.requests if m == "GET")
    assert fetched == [
        f"/v1/vulns/{i}" for i in ("PYSEC-2021-13", "PYSEC-2023-192", "PYSEC-2023-212")
    ]


def test_api_caches_per_package(serve: Callable[[Route], FakeServer]) -> None:
    server = serve(osv_route())
    api = OsvApi(server.url)

    async def twice() -> None:
        await api.advisories(["urllib3"])
        await api.advisories(["URLLIB3"])

    asyncio.run(twice())
    assert len([r for r in server.requests if r[0] == "POST"]) == 1


def test_unreachable_api_is_a_clear_error(closed_port_url: str) -> None:
    with pytest.raises(AdvisorySourceUnavailable, match="unreachable"):
        asyncio.run(OsvApi(closed_port_url, timeout=2).advisories(["urllib3"]))


def test_server_error_is_unavailable(serve: Callable[[Route], FakeServer]) -> None:
    server = serve(lambda m, p, b: (503, {"error": "down"}))
    with pytest.raises(AdvisorySourceUnavailable, match="503"):
        asyncio.run(OsvApi(server.url).advisories(["urllib3"]))


def test_failover_to_the_snapshot_says_so(closed_port_url: str, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pyyaml==5.3.1\n")
    source = FailoverSource([OsvApi(closed_port_url, timeout=2), OsvDatabase.open(SNAPSHOT)])
    report = asyncio.run(scan_repo(tmp_path, source))
    assert [f.advisory for f in report.findings] == ["PYSEC-2021-142"]
    [note] = report.notes
    assert "pypa-advisory-db" in note and "unreachable" in note
