"""The OSV API as an advisory source: ids from /v1/querybatch, records from /v1/vulns/ID.

We ask by package (no version) and evaluate the records locally with the same code as the
offline database, so the API and a snapshot can never disagree about semantics. Any network
failure becomes `AdvisorySourceUnavailable` with a one-line reason, so `FailoverSource` can
hand over to a local database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import httpx
from packaging.utils import canonicalize_name

from corral.workflows.cve.osv.advisory import (
    ECOSYSTEM,
    Advisory,
    AdvisoryFormatError,
    parse_advisory,
)
from corral.workflows.cve.osv.source import AdvisorySourceUnavailable

DEFAULT_URL = "https://api.osv.dev"
_BATCH = 1000  # the API's limit on queries per batch
_MAX_PAGES = 20


class OsvApi:
    """An `AdvisorySource` backed by the OSV web API; results cached per package."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 10.0,
        concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._transport = transport
        self._cache: dict[str, tuple[Advisory, ...]] = {}
        self._records: dict[str, Advisory | None] = {}

    @property
    def label(self) -> str:
        return f"OSV API {self._base}"

    async def advisories(self, packages: Collection[str]) -> dict[str, tuple[Advisory, ...]]:
        names: list[str] = sorted({canonicalize_name(p) for p in packages})
        missing = [n for n in names if n not in self._cache]
        if missing:
            async with httpx.AsyncClient(
                base_url=self._base, timeout=self._timeout, transport=self._transport
            ) as client:
                ids = await self._query(client, missing)
                wanted = sorted({i for found in ids.values() for i in found} - set(self._records))
                await asyncio.gather(*(self._fetch(client, i) for i in wanted))
            for name in missing:
                live = [
                    a
                    for i in ids.get(name, [])
                    if (a := self._records.get(i)) is not None
                    and not a.withdrawn
                    and name in a.packages()
                ]
                self._cache[name] = tuple(sorted(live, key=lambda a: a.id))
        return {n: self._cache[n] for n in names}

    async def _query(self, client: httpx.AsyncClient, names: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {n: [] for n in names}
        pending: list[tuple[str, str | None]] = [(n, None) for n in names]
        for _ in range(_MAX_PAGES):
            if not pending:
                break
            next_round: list[tuple[str, str | None]] = []
            for start in range(0, len(pending), _BATCH):
                chunk = pending[start : start + _BATCH]
                queries: list[dict[str, Any]] = []
                for name, token in chunk:
                    q: dict[str, Any] = {"package": {"name": name, "ecosystem": ECOSYSTEM}}
                    if token:
                        q["page_token"] = token
                    queries.append(q)
                body = await self._call(client, "POST", "/v1/querybatch", {"queries": queries})
                results = body.get("results") if isinstance(body, dict) else None
                if not isinstance(results, list) or len(results) != len(chunk):
                    raise AdvisorySourceUnavailable(f"{self.label}: malformed querybatch answer")
                for (name, _), result in zip(chunk, results, strict=True):
                    vulns = (result.get("vulns") or []) if isinstance(result, dict) else []
                    found[name].extend(str(v["id"]) for v in vulns if isinstance(v, dict))
                    token = result.get("next_page_token") if isinstance(result, dict) else None
                    if token:
                        next_round.append((name, str(token)))
            pending = next_round
        return found

    async def _fetch(self, client: httpx.AsyncClient, vuln_id: str) -> None:
        async with self._limit:
            body = await self._call(client, "GET", f"/v1/vulns/{vuln_id}", None)
        try:
            self._records[vuln_id] = parse_advisory(body)
        except AdvisoryFormatError:
            self._records[vuln_id] = None

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, payload: dict[str, Any] | None
    ) -> Any:
        try:
            resp = await client.request(method, path, json=payload)
        except httpx.HTTPError as e:
            raise AdvisorySourceUnavailable(
                f"{self.label} unreachable: {type(e).__name__}: {e}".strip()
            ) from e
        if resp.status_code != 200:
            raise AdvisorySourceUnavailable(f"{self.label}: {method} {path} -> {resp.status_code}")
        try:
            return resp.json()
        except ValueError as e:
            raise AdvisorySourceUnavailable(f"{self.label}: {path} answered non-JSON") from e
