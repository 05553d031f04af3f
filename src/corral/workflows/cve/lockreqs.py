"""Print a lock's entries as hash-pinned requirements, so pip checks the lock's hashes.

Runs inside the sandbox (stdlib only, Python 3.11+), copied next to the wheelhouse:

    python .corral/lockreqs.py poetry.lock urllib3 idna > /tmp/locked.txt
    pip install --no-index --find-links .corral/wheels --require-hashes -r /tmp/locked.txt

Reads poetry.lock (both layouts), uv.lock, pylock.toml and Pipfile.lock. A named package
missing from the lock, or without hashes, is an error: the check must not pass vacuously.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

_ALGOS = ("sha256", "sha384", "sha512")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(h: str) -> tuple[str, str] | None:
    algo, _, digest = h.partition(":")
    return (algo, digest) if algo in _ALGOS and digest else None


def _table_hashes(entry: Any) -> list[tuple[str, str]]:
    """uv's `hash = "sha256:..."` or pylock's `hashes = {sha256 = "..."}` of one file."""
    if not isinstance(entry, dict):
        return []
    out = []
    if isinstance(entry.get("hash"), str) and (pair := _split(entry["hash"])):
        out.append(pair)
    for algo, digest in (entry.get("hashes") or {}).items():
        if algo in _ALGOS and isinstance(digest, str):
            out.append((algo, digest))
    return out


def entries(path: Path) -> list[tuple[str, str, str | None, list[tuple[str, str]]]]:
    """(name, version, marker, hashes) for every entry of the lock."""
    text = path.read_text(encoding="utf-8")
    out = []
    if path.name == "Pipfile.lock":
        data = json.loads(text)
        for section in ("default", "develop"):
            for name, info in (data.get(section) or {}).items():
                if not isinstance(info, dict) or "version" not in info:
                    continue
                version = str(info["version"]).lstrip("=")
                hashes = [p for h in info.get("hashes") or [] if (p := _split(str(h)))]
                out.append((name, version, info.get("markers"), hashes))
        return out
    data = tomllib.loads(text)
    table = "packages" if path.name.startswith("pylock") else "package"
    legacy = (data.get("metadata") or {}).get("files") or {}
    legacy = {_norm(k): v for k, v in legacy.items()}
    for pkg in data.get(table) or []:
        name, version = pkg.get("name"), pkg.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        files = [pkg.get("sdist"), *(pkg.get("wheels") or []), *(pkg.get("files") or [])]
        files += legacy.get(_norm(name)) or []
        hashes = [h for f in files for h in _table_hashes(f)]
        marker = pkg.get("marker") or pkg.get("markers")
        out.append((name, version, marker if isinstance(marker, str) else None, hashes))
    return out


def requirements(path: Path, names: list[str]) -> list[str]:
    wanted = {_norm(n) for n in names}
    found: dict[str, str] = {}
    for name, version, marker, hashes in entries(path):
        key = _norm(name)
        if wanted and key not in wanted:
            continue
        if not hashes:
            raise SystemExit(f"lockreqs: {name} {version} has no hashes in {path}")
        line = f"{name}=={version}"
        if marker:
            line += f" ; {marker}"
        found[key] = line + "".join(f" --hash={a}:{d}" for a, d in sorted(set(hashes)))
    missing = sorted(wanted - set(found))
    if missing:
        raise SystemExit(f"lockreqs: {', '.join(missing)} not in {path}")
    return [found[k] for k in sorted(found)]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: lockreqs.py LOCKFILE [PACKAGE ...]", file=sys.stderr)
        return 2
    try:
        lines = requirements(Path(argv[0]), argv[1:])
    except (OSError, ValueError) as e:
        print(f"lockreqs: cannot read {argv[0]}: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
