"""A refactor file: the migration in words, how to find what it touches, how to verify it.

    name: assert-equal
    goal: Replace the deprecated unittest alias assertEquals with assertEqual.
    find: '\\bassertEquals\\('        # a regex: every match is a site to migrate
    replace: 'assertEqual('           # optional: the mechanical rewrite, if there is one
    paths: ['**/*.py']                # which files to search (default: every file)
    test: python -m pytest -q         # run after each subtask (optional)
    max_files: 5                      # a subtask's size: files ...
    max_sites: 40                     # ... and sites
    order: imports                    # dependencies first (imports), or none

The regex decides *where* to work; the goal tells the agent *what* to do there, so a
migration no regex can perform (an API whose call shape changes) is described in words.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from corral.domain import ConfigError, Frozen
from corral.orchestrator.campaign_file import read_yaml, validate


class RefactorSpec(Frozen):
    # A git branch name part: letters, digits, - and _ (no dots: `..`, `.lock`).
    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    goal: str = Field(min_length=1)
    find: str = Field(min_length=1)
    replace: str | None = None
    paths: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    test: str | None = None
    max_files: int = Field(default=5, ge=1, le=200)
    max_sites: int = Field(default=40, ge=1)
    order: Literal["imports", "none"] = "imports"

    @field_validator("find")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            pattern = re.compile(value, re.MULTILINE)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
        if pattern.search("") is not None:
            raise ValueError("the regex matches an empty string: every position would be a site")
        return value

    @field_validator("replace")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        find = info.data.get("find")
        if value is not None and find is not None:
            try:
                _check_groups(re.compile(find), value)
            except re.error as exc:
                raise ValueError(f"does not fit `find`: {exc}") from None
        return value

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.find, re.MULTILINE)


def _check_groups(find: re.Pattern[str], replace: str) -> None:
    """A bad replacement (an unknown group, a stray escape) fails at load, not in the
    sandbox mid-campaign: it is parsed the way `re.sub` will parse it."""
    # Private, but what re.sub itself calls (3.12+: _compile_template(pattern, repl)).
    if hasattr(re, "_compile_template"):
        re._compile_template(find, replace)
    else:
        re._compile_repl(replace, find)  # type: ignore[attr-defined]


def load_spec(path: str | Path) -> RefactorSpec:
    """Parse a refactor file; one line naming file, line and field for any mistake."""
    p = Path(path)
    _text, node, data = read_yaml(p, "refactor file")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a refactor file must be a mapping with `name`, `goal`, `find`")
    return validate(RefactorSpec, data, p, node)
