"""Report requirement conflicts an upgrade brings into a venv, as pip's resolver would.

Runs inside the sandbox with the venv's Python, copied next to the wheelhouse:

    /tmp/corral-venv/bin/python .corral/depcheck.py idna urllib3

Why: the wheelhouse installs every pin with `--no-deps`, so a bump past what another pin
accepts (`httpkit 1.0` needs `idna<3.7`) installs and may pass the tests, while the user's
own `pip install -r requirements.txt` then fails. Only the venv's own packages are read
(the system's are not the repo's), only conflicts with an upgraded package on either side
are reported (one the repo already had is not ours to fail on), and a requirement whose
package is not installed at all is left alone (repos often pin only their direct deps).
Prints one `corral-conflict:` line per conflict; exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from importlib import metadata

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pip's own copy: always there, since pip installs into this venv
    from pip._vendor.packaging.requirements import (  # type: ignore[no-redef,assignment]
        InvalidRequirement,
        Requirement,
    )

MARK = "corral-conflict: "


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def conflicts(site: str, upgraded: set[str], path: list[str] | None = None) -> list[str]:
    """Conflicts among what `site` holds (the venv's own packages), against every package
    visible on `path` (sys.path when None), involving an upgraded package."""
    upgraded = {_norm(n) for n in upgraded}
    visible: dict[str, str] = {}
    for dist in metadata.distributions(path=path if path is not None else sys.path):
        name = dist.metadata["Name"]
        if name:  # the first one found is the one Python imports
            visible.setdefault(_norm(name), dist.version)
    found = []
    for dist in metadata.distributions(path=[site]):
        name = _norm(dist.metadata["Name"] or "")
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra's requirement, or not for this Python
            dep = _norm(req.name)
            have = visible.get(dep)
            if have is None or not {name, dep} & upgraded:
                continue
            if not req.specifier.contains(have, prereleases=True):
                found.append(f"{name} {dist.version} requires {req}, but {dep} {have} is installed")
    return sorted(set(found))


def main(argv: list[str]) -> int:
    found = conflicts(sysconfig.get_paths()["purelib"], set(argv))
    for line in found:
        print(MARK + line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
