"""The sha256 of every file of a release, for rewriting hash-pinned manifests on a bump.

The index's JSON API lists every file of the release (the sdist and all wheels, every
platform), which is what a lock or a `--hash` requirement must hold. The wheel the
campaign downloaded into the repo's wheelhouse is the file the sandbox will install; its
own digest must be among the index's, or the index and the download disagree and no hash
is written. With the index unreachable nothing is written either: a partial list would
break installs on other platforms, a stale one breaks them everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name, canonicalize_version

from corral.workflows.cve.index import PyPIIndex, ReleaseFile

Found = dict[tuple[str, str], list[ReleaseFile] | str]
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.*\.whl$")


async def release_digests(wanted: Iterable[tuple[str, str]], index: PyPIIndex) -> Found:
    """(package, version) -> its files with digests, or a one-line reason why not."""
    keys = sorted(set(wanted))
    answers = await asyncio.gather(*(index.files(name, version) for name, version in keys))
    return dict(zip(keys, answers, strict=True))


async def check_wheelhouse(found: Found, house: Path) -> Found:
    """The downloaded wheels must be among the index's files, or no hash is written."""
    out: Found = {}
    for key, files in found.items():
        local = None if isinstance(files, str) else _local_wheel(house, *key)
        if local is not None and not isinstance(files, str):
            digest = await asyncio.to_thread(sha256_of, local)
            if digest not in {f.sha256 for f in files}:
                out[key] = (
                    f"the downloaded {local.name} (sha256 {digest[:12]}...) is not among the "
                    "index's files for that release"
                )
                continue
        out[key] = files
    return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _local_wheel(house: Path, name: str, version: str) -> Path | None:
    if not house.is_dir():
        return None
    for p in sorted(house.glob("*.whl")):
        m = _WHEEL.match(p.name)
        if (
            m
            and canonicalize_name(m["name"]) == name
            and (canonicalize_version(m["version"]) == canonicalize_version(version))
        ):
            return p
    return None
