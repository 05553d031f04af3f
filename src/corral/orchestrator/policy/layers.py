"""Which rules apply to one attempt, each layer with the trust it deserves.

1. The built-in rules (`builtin.py`).
2. `HOME/policy.yaml`, the installation's (its operator's): may replace built-in rules by
   name, add rules, or `disable` some. It is read at each attempt's start, so an
   operator's change applies from the next attempt on, also in a running campaign; every
   audit entry names the digest of the rules that applied. When the file lies inside the
   repository under work (`corral run --repo .` with the default home `./.corral`), the
   repository may have shipped it, so it is held to the rules of step 3: add only.
3. The campaign's `policy:` file, then the task's: add only (no `disable`, no rule named
   like a built-in one). Since the strictest matching rule wins, they can only tighten:
   deny always wins, require_approval beats allow, and no campaign, task or repository
   can relax a rule. They are read once, when the campaign is created, and their text is
   kept in the task's spec (`policy_files`, with its sha256): editing or deleting a file
   later changes nothing, and a task resumed after a crash or an approval runs under
   the same rules.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

from corral.domain import ConfigError, TaskSpec
from corral.domain.tasks import PolicyFile
from corral.orchestrator.policy.rules import Policy

HOME_POLICY = "policy.yaml"


def read_policy_file(path: Path, *, base: Sequence[PolicyFile] = ()) -> PolicyFile:
    """Read and check one campaign or task policy file (on top of the `base` files)."""
    if not path.exists():
        raise ConfigError(f"policy file {path} does not exist")
    text = _read(path)
    snap = PolicyFile(path=str(path), sha256=hashlib.sha256(text.encode()).hexdigest(), text=text)
    _compose(None, "", True, (*base, snap))  # every mistake surfaces now, naming the file
    return snap


def effective_policy(
    home: Path | None, repo: Path | None = None, files: Sequence[PolicyFile] = ()
) -> Policy:
    """Built-in, then `home/policy.yaml` (add only when inside `repo`), then `files`."""
    text, source, trusted = None, "", True
    if home is not None:
        path = home / HOME_POLICY
        text = _read(path) if path.exists() else None
        source = str(path)
        if text is not None and repo is not None:
            trusted = not path.resolve().is_relative_to(repo.resolve())
            if not trusted:
                source += " (inside the repository under work, so it may only add rules)"
    return _compose(text, source, trusted, tuple(files))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"policy file {path} cannot be read: {e.__class__.__name__}") from None


def task_policy(home: Path | None, spec: TaskSpec) -> Policy:
    return effective_policy(home, Path(spec.repo), spec.policy_files)


@functools.lru_cache(maxsize=256)
def _compose(
    home_text: str | None, home_source: str, home_trusted: bool, files: tuple[PolicyFile, ...]
) -> Policy:
    """Cached: a fleet's attempts share a handful of distinct layer stacks."""
    policy = Policy.builtin()
    if home_text is not None:
        policy = Policy.from_yaml(
            home_text, source=home_source, base=policy, add_only=not home_trusted
        )
    for f in files:
        policy = Policy.from_yaml(f.text, source=f.path, base=policy, add_only=True)
    return policy
