"""A wheelhouse per repository, so dependencies install inside a sandbox with no network.

The host downloads exactly the pinned requirements (after the planned upgrades) as wheels
(`pip download --only-binary=:all: --no-deps`), caches them under
~/.cache/corral/wheels/NAME/VERSION/, and links them into the repo's `.corral/wheels/`
(ignored by git through `.corral/.gitignore`, so never in a diff or a commit). The sandbox
then installs with `pip install --no-index --find-links .corral/wheels`. When an egress
proxy allows the package index, `install="index"` skips all of this.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from corral.domain import ConfigError
from corral.workflows.cve.manifests import read_repo
from corral.workflows.cve.models import FixPlan

CORRAL_DIR = ".corral"
WHEELS_DIR = f"{CORRAL_DIR}/wheels"
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "corral" / "wheels"


def pins_for(root: Path, plan: FixPlan) -> list[str]:
    """Requirement strings for every dependency the repo pins, upgrades applied.

    Lock entries win over plain declarations; unpinned ones keep their range (pip picks
    the newest it admits); deps whose markers exclude this Python are left out.
    """
    bumped = {u.package: u.to_version for u in plan.upgrades if u.kind == "pin"}
    floors = {u.package: u.to_version for u in plan.upgrades if u.kind == "range"}
    chosen: dict[str, str] = {}
    for d in read_repo(root).declared:
        if d.markers and not _marker_ok(d.markers):
            continue
        if d.version is not None:
            if d.is_lock or d.name not in chosen or "==" not in chosen[d.name]:
                chosen[d.name] = f"{d.name}=={bumped.get(d.name, d.version)}"
        elif d.name not in chosen:
            spec = ",".join(s for s in d.specs[:1] if s)
            if d.name in floors:
                spec = f">={floors[d.name]}"
            chosen[d.name] = d.name + spec
    return [chosen[k] for k in sorted(chosen)]


def _marker_ok(text: str) -> bool:
    try:
        return Marker(text).evaluate()
    except InvalidMarker:
        return True


@dataclass
class Wheelhouse:
    """What `prepare` put in place, and what it could not get."""

    path: Path
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def ignore_corral_dir(root: Path) -> Path:
    """`.corral/` holds our working files; a `*` .gitignore keeps all of it out of git.

    The host writes there as root, from the repo's own tree: a symlink the repo planted
    (`.corral -> /etc`, `.corral/pins.txt -> /root/.bashrc`) would turn those writes
    into writes anywhere. So `.corral` must be a real directory, and links in it go.
    """
    d = root / CORRAL_DIR
    if d.is_symlink() or (d.exists() and not d.is_dir()):
        raise ConfigError(f"{d} is not a directory: corral keeps its working files there")
    d.mkdir(exist_ok=True)
    with os.scandir(d) as entries:
        for entry in entries:
            if entry.is_symlink():
                os.unlink(entry.path)
    gi = d / ".gitignore"
    if not gi.is_file() or gi.read_text().strip() != "*":
        gi.write_text("*\n")
    return d


async def prepare(
    root: Path, pins: Sequence[str], *, cache: Path | None = None, jobs: int = 4
) -> Wheelhouse:
    """Fill ROOT/.corral/wheels with one wheel per pin (cached), and write the pins file."""
    corral = ignore_corral_dir(root)
    house = Wheelhouse(corral / "wheels")
    if house.path.exists():
        shutil.rmtree(house.path)
    house.path.mkdir()
    (corral / "pins.txt").write_text("".join(f"{p}\n" for p in pins))
    cache = cache or default_cache()
    gate = asyncio.Semaphore(jobs)

    async def one(req: str) -> None:
        async with gate:
            wheel, problem = await fetch(req, cache)
        if wheel is None:
            house.problems.append(problem)
            return
        _link(wheel, house.path / wheel.name)
        house.files.append(wheel.name)

    await asyncio.gather(*(one(p) for p in pins))
    house.problems.sort()
    house.files.sort()
    return house


async def fetch(req: str, cache: Path) -> tuple[Path | None, str]:
    """One wheel for `req` from the cache, else from the index through `pip download`."""
    name, _, version = req.partition("==")
    name = canonicalize_name(name)
    if version:
        hit = _cached(cache / name / version)
        if hit is not None:
            return hit, ""
    with tempfile.TemporaryDirectory(prefix="corral-wheels-") as tmp:
        code, out = await _pip_download(req, Path(tmp))
        got = await asyncio.to_thread(lambda: sorted(Path(tmp).glob("*.whl")))
        if code != 0 or not got:
            return None, _why(req, out)
        wheel = got[0]
        m = _WHEEL_NAME.match(wheel.name)
        dest = cache / name / (version or (m["version"] if m else "unknown"))
        dest.mkdir(parents=True, exist_ok=True)
        final = dest / wheel.name
        if not final.exists():
            shutil.move(str(wheel), final)
        return final, ""


def _cached(d: Path) -> Path | None:
    hits = sorted(d.glob("*.whl")) if d.is_dir() else []
    return hits[0] if hits else None


async def _pip_download(req: str, dest: Path) -> tuple[int, str]:
    argv = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--dest", str(dest), req,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 1, "pip download timed out"
    return proc.returncode or 0, out.decode(errors="replace")


def _why(req: str, out: str) -> str:
    if "from versions: none" in out or "No matching distribution" in out:
        return (
            f"{req}: no wheel on the index (only an sdist, or no such release); "
            "it cannot be installed in the offline sandbox"
        )
    tail = " ".join(out.strip().splitlines()[-1:])[:200]
    return f"{req}: download failed: {tail or 'pip download failed'}"


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def sdist_only(problems: Iterable[str]) -> list[str]:
    return [p for p in problems if "no wheel" in p]
