"""The Docker engine, through the `docker` CLI: checks, the base image, listing, reaping.

Why the CLI and not the Docker SDK: the CLI is what the setup installs anyway, it is
async-friendly through asyncio subprocesses (the SDK is blocking), and it is only used
off the hot path - creating and removing containers. Commands never pass through it:
they go over FIFOs straight into the container's shell (see docker.py).

The base image is built without any registry: `debootstrap` fetches Debian bookworm
(python3, git) from the Debian mirror into a folder, which `docker import` turns into
an image. It is cached by tag; bump IMAGE_VERSION when the recipe changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.domain import SandboxError
from corral.sandbox.procs import owner_alive
from corral.sandbox.workspace import remove_root

IMAGE_VERSION = 2
IMAGE = f"corral-sandbox:bookworm-{IMAGE_VERSION}"
LABEL = "corral"
MISSING_DOCKER = (
    "no Docker engine answers: run `sudo scripts/setup-docker.sh` "
    "(installs docker.io and starts dockerd)"
)
_PACKAGES = "python3,git,ca-certificates,curl"
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
         "var/cache/apt/archives", "var/lib/apt/lists")  # fmt: skip


def docker_cli() -> str | None:
    return shutil.which("docker")


async def docker(*args: str, timeout: float = 120, stdin: bytes | None = None) -> str:
    """Run `docker ARGS`; its stdout, or SandboxError with the last line it complained."""
    cli = docker_cli()
    if cli is None:
        raise SandboxError(MISSING_DOCKER)
    proc = await asyncio.create_subprocess_exec(
        cli, *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise SandboxError(f"docker {args[0]} did not answer within {timeout:g} s") from None
    except asyncio.CancelledError:
        # The engine finishes a request it got even if the CLI dies, so let the CLI end:
        # the caller's cleanup (`rm` of a container being created) must come after it.
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        raise
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise SandboxError(f"docker {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return out.decode(errors="replace")


async def engine_ready() -> bool:
    try:
        await docker("version", "--format", "{{.Server.Version}}", timeout=20)
    except SandboxError:
        return False
    return True


async def image_exists(tag: str = IMAGE) -> bool:
    try:
        await docker("image", "inspect", "--format", "{{.Id}}", tag, timeout=20)
    except SandboxError:
        return False
    return True


def debian_mirror() -> str:
    """The Debian mirror apt already uses (or CORRAL_DEBIAN_MIRROR), for debootstrap."""
    if env := os.environ.get("CORRAL_DEBIAN_MIRROR"):
        return env
    sources = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        with contextlib.suppress(OSError):
            for match in re.finditer(r"(https?://\S+/debian)(?:\s|/?$)", path.read_text(), re.M):
                return match.group(1)
    return "http://deb.debian.org/debian"


async def prepare_image(
    tag: str = IMAGE, *, say: Callable[[str], None] = lambda _m: None, force: bool = False
) -> bool:
    """Make sure the sandbox image exists; build it offline-from-registries if not.

    Returns True if it was built now, False if it was already there.
    """
    if not await engine_ready():
        raise SandboxError(MISSING_DOCKER)
    if not force and await image_exists(tag):
        say(f"image {tag} is ready (cached)")
        return False
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        raise SandboxError("debootstrap is not installed: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise SandboxError("building the sandbox image needs root (debootstrap): use sudo")
    mirror = debian_mirror()
    work = Path(tempfile.mkdtemp(prefix="corral-image-", dir="/var/tmp"))
    try:
        root = work / "root"
        say(f"building image {tag}: debootstrap bookworm from {mirror} (about a minute)")
        await _run(debootstrap, "--variant=minbase", f"--include={_PACKAGES}",
                   "bookworm", str(root), mirror)  # fmt: skip
        _customise(root)
        say(f"importing {root} as {tag}")
        await _run(
            "bash", "-o", "pipefail", "-c",
            'tar --numeric-owner -C "$1" -c . | "$2" import --change "USER 1000:1000" '
            '--change "WORKDIR /workspace" --change "LABEL corral.image=1" - "$3"',
            "import", str(root), docker_cli() or "docker", tag,
        )  # fmt: skip
        say(f"image {tag} built")
        for old in await drop_old_images(tag):
            say(f"removed the previous image {old}")
        return True
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def drop_old_images(keep: str) -> list[str]:
    """Earlier versions of our image (tags of the same name ending in a lower `-N`),
    ~200 MB each, once a new one is built; one still used by a container stays. Never a
    newer one: during a rolling upgrade an older worker that rebuilt its own version
    would otherwise remove the newer workers' image, and they its, over and over."""
    keep = keep if ":" in keep.rsplit("/", 1)[-1] else f"{keep}:latest"
    name, mine = keep.rsplit(":", 1)[0], _tag_version(keep)
    if mine is None:
        return []  # no version to order by: nothing is known to be older
    try:
        out = await docker("images", name, "--filter", "label=corral.image=1",
                           "--format", "{{.Repository}}:{{.Tag}}")  # fmt: skip
    except SandboxError:
        return []  # tidying up is not worth failing a build that worked
    dropped = []
    for image in out.split():
        theirs = _tag_version(image)
        if theirs is not None and theirs < mine:
            with contextlib.suppress(SandboxError):
                await docker("rmi", image)
                dropped.append(image)
    return dropped


def _tag_version(image: str) -> int | None:
    """`corral-sandbox:bookworm-2` -> 2."""
    tail = image.rsplit(":", 1)[-1].rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _customise(root: Path) -> None:
    """The sandbox user, its mount points, and less weight (docs, apt caches)."""
    with open(root / "etc/passwd", "a") as fh:
        fh.write("user:x:1000:1000:corral sandbox:/home/user:/bin/bash\n")
    with open(root / "etc/group", "a") as fh:
        fh.write("user:x:1000:\n")
    for sub in ("home/user", "workspace", "run/corral/ctl", "run/corral/state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chown(root / "home/user", 1000, 1000)
    for sub in _TRIM:
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        lines = out.decode(errors="replace").strip().splitlines()
        raise SandboxError(f"{Path(argv[0]).name} failed: {lines[-1] if lines else '?'}")


@dataclass(frozen=True)
class Container:
    """One corral container as `docker ps` sees it."""

    id: str
    name: str
    status: str
    owner: str
    root: str
    attempt: str

    @property
    def orphaned(self) -> bool:
        return not owner_alive(self.owner)


async def list_containers() -> list[Container]:
    fmt = (
        '{{.ID}}\t{{.Names}}\t{{.Status}}\t{{.Label "corral.owner"}}\t'
        '{{.Label "corral.root"}}\t{{.Label "corral.attempt"}}'
    )
    out = await docker("ps", "-a", "--no-trunc", "--filter", f"label={LABEL}=1",
                       "--format", fmt, timeout=30)  # fmt: skip
    found = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            cid, name, status, owner, root, attempt = parts
            if not attempt and root:  # pooled: the attempt is written when claimed
                with contextlib.suppress(OSError):
                    attempt = (Path(root) / "attempt").read_text().strip()
            found.append(Container(cid, name, status, owner, root, attempt))
    return found


async def remove_containers(ids: list[str]) -> None:
    if ids:
        with contextlib.suppress(SandboxError):
            await docker("rm", "-f", "-v", *ids, timeout=60)


async def reap(*, everything: bool = False) -> list[Container]:
    """Remove corral containers whose owning process is gone (or all of them)."""
    gone = [c for c in await list_containers() if everything or c.orphaned]
    await remove_containers([c.id for c in gone])
    roots = [Path(c.root) for c in gone if c.root]
    await asyncio.to_thread(_remove_roots, roots)
    return gone


def _remove_roots(roots: list[Path]) -> None:
    for root in roots:
        if root.name.startswith("corral-") and root.is_dir():
            remove_root(root, capped=False)
