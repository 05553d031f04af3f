"""Report requirement conflicts an upgrade brings into a venv, as pip's resolver would.

Runs inside the sandbox with the venv's Python, copied next to the wheelhouse:

    /tmp/corral-venv/bin/python .corral/depcheck.py idna urllib3

Why: the wheelhouse installs every pin with `--no-deps`, so a bump past what another pin
accepts (`httpkit 1.0` needs `idna<3.7`) installs and may pass the tests, while the user's
own `pip install -r requirements.txt` then fails. Only the venv's own packages are read:
every pin is installed there (`--ignore-installed`), and the system's packages are not
the repo's. Only conflicts with an upgraded package on either side are reported (one the
repo already had is not ours to fail on), and a requirement on a package the venv does
not hold is left alone (repos often pin only their direct deps; pip would fetch it).
Prints one `corral-conflict:` line per conflict; exits 1 when there is any.
"""

from __future__ import annotations

import sys
import sysconfig
from importlib import metadata

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # pip's own copy: always there, since pip installs into this venv
    from pip._vendor.packaging.requirements import (  # type: ignore[no-redef,assignment]
        InvalidRequirement,
        Requirement,
    )
    from pip._vendor.packaging.utils import (  # type: ignore[no-redef,assignment]
        canonicalize_name,
    )
    from pip._vendor.packaging.version import (  # type: ignore[no-redef,assignment]
        InvalidVersion,
        Version,
    )

MARK = "corral-conflict: "


def conflicts(sites: list[str], upgraded: set[str]) -> list[str]:
    """Conflicts among the packages in `sites` (the venv's own) involving an upgraded one."""
    upgraded = {canonicalize_name(n) for n in upgraded}
    dists = list(metadata.distributions(path=sites))
    have: dict[str, str] = {}
    for dist in dists:
        have.setdefault(canonicalize_name(dist.metadata["Name"] or ""), dist.version)
    found = []
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"] or "")
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra's requirement, or not for this Python
            dep = canonicalize_name(req.name)
            version = have.get(dep)
            if version is None or not {name, dep} & upgraded:
                continue
            try:
                ok = req.specifier.contains(Version(version), prereleases=True)
            except InvalidVersion:
                continue  # not a version pip could compare either
            if not ok:
                found.append(
                    f"{name} {dist.version} requires {req}, but {dep} {version} is installed"
                )
    return sorted(set(found))


def main(argv: list[str]) -> int:
    paths = sysconfig.get_paths()
    found = conflicts(sorted({paths["purelib"], paths["platlib"]}), set(argv))
    for line in found:
        print(MARK + line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
