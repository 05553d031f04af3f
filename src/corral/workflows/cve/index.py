"""The package index, behind a one-method interface so the planner can run without it.

PackageIndex     releases(name) -> releases, or None when the index cannot say
├── PyPIIndex    PyPI's JSON API (https://pypi.org/pypi/NAME/json), cached per name;
│                also `files(name, version)`: every file of a release with its sha256,
│                which a bump needs to rewrite hash-pinned manifests
└── StaticIndex  a fixed release list (tests, air-gapped runs, a campaign's cache)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from packaging.utils import canonicalize_name
from packaging.version import Version

from corral.workflows.cve.osv.ranges import parse_version

PYPI_URL = "https://pypi.org/pypi"


@dataclass(frozen=True, slots=True)
class Release:
    version: Version
    yanked: bool = False

    @property
    def installable(self) -> bool:
        """What a minimal safe upgrade may target: final and not yanked."""
        return not self.yanked and not self.version.is_prerelease


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    """One file of a release, as a lock file records it."""

    filename: str
    sha256: str
    url: str | None = None
    size: int | None = None
    upload_time: str | None = None  # RFC 3339, as the index gives it

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


class PackageIndex(Protocol):
    async def releases(self, name: str) -> Sequence[Release] | None:
        """Every release of a package, or None when the index is unreachable or lacks it."""
        ...


class StaticIndex:
    """Releases given up front; `{name: ["1.0", "1.1!yanked"]}` marks a yanked one."""

    def __init__(self, releases: Mapping[str, Iterable[str]]) -> None:
        self._releases: dict[str, list[Release]] = {}
        for name, versions in releases.items():
            rows = []
            for raw in versions:
                text, _, flag = raw.partition("!yanked")
                v = parse_version(text)
                if v is not None:
                    rows.append(Release(v, yanked=bool(flag) or raw.endswith("!yanked")))
            self._releases[canonicalize_name(name)] = sorted(rows, key=lambda r: r.version)

    async def releases(self, name: str) -> Sequence[Release] | None:
        return self._releases.get(canonicalize_name(name))


class PyPIIndex:
    """PyPI's JSON API (or a mirror of it: $CORRAL_PYPI_URL). A release counts as yanked
    when every file of it is yanked."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = (base_url or os.environ.get("CORRAL_PYPI_URL") or PYPI_URL).rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._limit = asyncio.Semaphore(concurrency)
        self._cache: dict[str, list[Release] | None] = {}
        self.failures: list[str] = []

    async def releases(self, name: str) -> Sequence[Release] | None:
        key = canonicalize_name(name)
        if key not in self._cache:
            self._cache[key] = await self._fetch(key)
        return self._cache[key]

    async def files(self, name: str, version: str) -> list[ReleaseFile] | str:
        """Every file of NAME==VERSION with its digest, or why they cannot be had."""
        key = canonicalize_name(name)
        async with self._limit:
            try:
                resp = await self._client.get(f"{self._base}/{key}/{version}/json")
            except httpx.HTTPError as e:
                return f"index unreachable ({type(e).__name__})"
        if resp.status_code != 200:
            return f"the index answered HTTP {resp.status_code}"
        try:
            return parse_release_files(resp.json())
        except ValueError as e:
            return f"unusable index answer: {e}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> PyPIIndex:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _fetch(self, name: str) -> list[Release] | None:
        async with self._limit:
            try:
                resp = await self._client.get(f"{self._base}/{name}/json")
            except httpx.HTTPError as e:
                self.failures.append(f"{name}: {type(e).__name__}")
                return None
        if resp.status_code != 200:
            self.failures.append(f"{name}: HTTP {resp.status_code}")
            return None
        try:
            body = resp.json()
        except ValueError:
            self.failures.append(f"{name}: non-JSON answer")
            return None
        return parse_pypi_json(body)


def parse_pypi_json(body: Any) -> list[Release] | None:
    """Releases from a PyPI JSON document; releases without files are not installable."""
    releases = body.get("releases") if isinstance(body, dict) else None
    if not isinstance(releases, dict):
        return None
    out: list[Release] = []
    for raw, files in releases.items():
        v = parse_version(str(raw))
        if v is None or not isinstance(files, list) or not files:
            continue
        yanked = all(isinstance(f, dict) and f.get("yanked") for f in files)
        out.append(Release(v, yanked=yanked))
    return sorted(out, key=lambda r: r.version)


def parse_release_files(body: Any) -> list[ReleaseFile]:
    """The `urls` of a PyPI release document; raises ValueError when a file lacks a sha256."""
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list):
        raise ValueError("no `urls` list")
    out: list[ReleaseFile] = []
    for f in urls:
        if not isinstance(f, dict) or not isinstance(f.get("filename"), str):
            raise ValueError("a file entry without a filename")
        digest = (f.get("digests") or {}).get("sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"{f['filename']} has no sha256 digest")
        size = f.get("size")
        out.append(
            ReleaseFile(
                filename=f["filename"],
                sha256=digest.lower(),
                url=f.get("url") if isinstance(f.get("url"), str) else None,
                size=size if isinstance(size, int) else None,
                upload_time=f.get("upload_time_iso_8601") or None,
            )
        )
    if not out:
        raise ValueError("the release has no files")
    return sorted(out, key=lambda r: r.filename)
