"""Real wheel files built on the spot, and a PyPI JSON API that describes them.

The wheels are tiny but genuine (pip installs them and checks their hashes); the campaign's
wheel cache is filled with them, so nothing is downloaded from the network.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    wheel: Path
    sdist_sha256: str  # a stand-in sdist nobody installs, but locks list it

    @property
    def wheel_sha256(self) -> str:
        return hashlib.sha256(self.wheel.read_bytes()).hexdigest()

    def urls(self) -> list[dict[str, Any]]:
        base = f"https://files.example/{self.name}"
        sdist = f"{self.name}-{self.version}.tar.gz"
        return [
            {"filename": self.wheel.name, "url": f"{base}/{self.wheel.name}", "size": 1234,
             "digests": {"sha256": self.wheel_sha256}, "packagetype": "bdist_wheel",
             "upload_time_iso_8601": "2024-04-11T03:34:25.000000Z"},
            {"filename": sdist, "url": f"{base}/{sdist}", "size": 4321,
             "digests": {"sha256": self.sdist_sha256}, "packagetype": "sdist",
             "upload_time_iso_8601": "2024-04-11T03:34:27.000000Z"},
        ]  # fmt: skip


def build(cache: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Dist:
    """A py3-none-any wheel of a module NAME with `__version__`, in the wheel cache layout."""
    dest = cache / name / version
    dest.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    needs = "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{needs}",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: corral-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [f"{k},sha256={_b64(v)},{len(v.encode())}" for k, v in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    sdist = hashlib.sha256(f"sdist of {name} {version}".encode()).hexdigest()
    return Dist(name, version, wheel, sdist)


def _b64(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def route(dists: list[Dist]) -> Any:
    """A FakeServer route answering /pypi/NAME/VERSION/json for the given releases."""
    known = {f"/pypi/{d.name}/{d.version}/json": d for d in dists}

    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        d = known.get(path)
        if d is None:
            return 404, {"message": "Not Found"}
        return 200, {"info": {"name": d.name, "version": d.version}, "urls": d.urls()}

    return answer
