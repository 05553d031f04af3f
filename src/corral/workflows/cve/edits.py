"""The exact text edits a plan makes, decided on the host before any sandbox runs.

Each planned upgrade becomes a `str_replace` at its recorded location: the pin on a
requirements/pyproject line, or the version (and file hashes) of a lock entry. An entry
that carries hashes gets the new release's hashes too (see `rehash`); when they cannot
be had, the entry is left alone, never given a stale hash, and a HashGap says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from corral.workflows.cve import rehash
from corral.workflows.cve.index import ReleaseFile
from corral.workflows.cve.manifests import poetry_to_pep440, repo_file
from corral.workflows.cve.models import FixPlan, Upgrade
from corral.workflows.cve.tasks import Edit

_PIN = r"(?P<op>===?)\s*(?P<ver>{ver})(?![\w.+!-])"
# (package, version) -> every file of that release, or why they could not be had.
Digests = Mapping[tuple[str, str], Sequence[ReleaseFile] | str]
NOT_LOOKED_UP = "not looked up"


@dataclass(frozen=True)
class HashGap:
    """A bump in a hash-carrying entry whose new hashes we lack."""

    package: str
    version: str
    file: str
    line: int
    why: str


@dataclass
class EditPlan:
    edits: list[Edit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hash_gaps: list[HashGap] = field(default_factory=list)


def build_edits(root: Path, plan: FixPlan, digests: Digests | None = None) -> EditPlan:
    """Every planned upgrade as edits at its recorded locations."""
    out = EditPlan()
    cache: dict[str, list[str]] = {}
    for up in plan.upgrades:
        for loc in up.locations:
            lines = cache.get(loc.file)
            if lines is None:
                try:
                    lines = (root / loc.file).read_text().splitlines(keepends=True)
                except (OSError, UnicodeDecodeError) as e:
                    out.problems.append(f"{up.package}: cannot read {loc.file}: {e}")
                    continue
                cache[loc.file] = lines
            files = (digests or {}).get((up.package, up.to_version), NOT_LOOKED_UP)
            for edit in _edits_at(lines, loc.file, loc.line, up, files):
                if isinstance(edit, HashGap):
                    out.hash_gaps.append(edit)
                elif isinstance(edit, str):
                    out.problems.append(edit)
                elif all((e.file, e.old) != (edit.file, edit.old) for e in out.edits):
                    out.edits.append(edit)
    return out


Made = list[Edit | HashGap | str]


def _edits_at(
    lines: Sequence[str], file: str, line: int, up: Upgrade, files: Sequence[ReleaseFile] | str
) -> Made:
    if not 1 <= line <= len(lines):
        return [f"{up.package}: {file}:{line} is past the end of the file"]
    text = lines[line - 1]
    if up.kind == "range":
        new = _raise_floor(text, up, file)
        if new is None:
            return [f"{up.package}: cannot rewrite the range at {file}:{line}; edit it by hand"]
        return [Edit(file=file, line=line, package=up.package, old=text, new=new)]
    pin = re.compile(_PIN.format(ver=re.escape(up.from_version)))
    if pin.search(text):  # requirements / pyproject: name==X on this very line
        return _pin_edit(lines, file, line, up, pin, files)
    return _lock_edits(lines, file, line, up, files)


def _pin_edit(
    lines: Sequence[str],
    file: str,
    line: int,
    up: Upgrade,
    pin: re.Pattern[str],
    files: Sequence[ReleaseFile] | str,
) -> Made:
    end = rehash.requirement_end(lines, line - 1) if file.endswith(".txt") else line
    old = lines[line - 1 : end]
    hashed = rehash.requirement_hashed(old)
    block = list(old)
    if hashed:
        if isinstance(files, str):
            return [HashGap(up.package, up.to_version, file, line, files)]
        block = rehash.rehash_requirement(block, files)
    block[0] = pin.sub(lambda m: f"{m['op']}{up.to_version}", block[0], count=1)
    return [Edit(file=file, line=line, package=up.package, old="".join(old),
                 new="".join(block), hashes=hashed)]  # fmt: skip


def _lock_edits(
    lines: Sequence[str], file: str, line: int, up: Upgrade, files: Sequence[ReleaseFile] | str
) -> Made:
    """A lock entry: the location is its `name` line; the version is a few lines below."""
    quoted = re.compile(rf"(?P<q>[\"'])(?P<op>==)?{re.escape(up.from_version)}(?P=q)")
    json_lock = Path(file).name == "Pipfile.lock"
    if json_lock:
        top = end = rehash.json_entry_end(lines, line - 1)
    else:
        table = "packages" if Path(file).name.startswith("pylock") else "package"
        top, end = rehash.toml_region(lines, line - 1, table)
    rows = range(line - 1, top)
    at = next((j for j in rows if "version" in lines[j] and quoted.search(lines[j])), None)
    if at is None:
        return [f"{up.package}: no {up.from_version} pin found at {file}:{line}"]
    whole = "".join(lines[line - 1 : end])
    hashed = rehash.pipfile_hashed(whole) if json_lock else rehash.toml_hashed(whole)
    legacy = None if json_lock else rehash.poetry_metadata_entry(lines, up.package)
    if legacy is not None and not rehash.toml_hashed("".join(lines[legacy[0] : legacy[1]])):
        legacy = None
    stop = top if hashed else at + 1
    block = list(lines[line - 1 : stop])
    k = at - (line - 1)
    block[k] = quoted.sub(lambda m: f"{m['q']}{m['op'] or ''}{up.to_version}{m['q']}",
                          block[k], count=1)  # fmt: skip
    old = "".join(lines[line - 1 : stop])
    if not hashed and legacy is None:
        return [Edit(file=file, line=line, package=up.package, old=old, new="".join(block),
                     lock=True)]  # fmt: skip

    def gap(why: str) -> Made:
        return [HashGap(up.package, up.to_version, file, line, why)]

    if isinstance(files, str):
        return gap(files)
    if not json_lock and rehash.toml_hashed("".join(lines[top:end])):
        return gap(f"{file}: hashes in sub-tables of the entry are not rewritten by corral")
    try:
        if hashed:
            rewrite = rehash.rehash_pipfile if json_lock else rehash.rehash_toml
            block = rewrite(block, files)
        out: Made = [Edit(file=file, line=line, package=up.package, old=old, new="".join(block),
                          lock=True, hashes=hashed)]  # fmt: skip
        if legacy is not None:
            a, b = legacy
            meta = rehash.rehash_poetry_metadata(lines[a:b], files)
            out.append(Edit(file=file, line=a + 1, package=up.package, old="".join(lines[a:b]),
                            new="".join(meta), lock=True, hashes=True))  # fmt: skip
    except rehash.RehashError as e:
        return gap(f"{file}: {e}")
    return out


def _raise_floor(text: str, up: Upgrade, file: str = "") -> str | None:
    """`pkg>=1.0,<3` -> `pkg>=FIXED,<3`; a bare `pkg` gains `>=FIXED`; a TOML table entry
    (`pkg = "^1.0"`, `pkg = {version = "*"}` in Poetry or a Pipfile) gets a new string."""
    name = re.escape(up.package).replace("\\-", "[-_.]")
    key = re.match(rf"(?i)^(\s*[\"']?{name}[\"']?\s*=\s*)(.*)$", text, re.S)
    if key:
        return _raise_toml_floor(text, key, up, poetry=Path(file).name == "pyproject.toml")
    m = re.search(r">=\s*[\w.!+-]+", text)
    if m:
        return text[: m.start()] + f">={up.to_version}" + text[m.end() :]
    bare = re.search(rf"(?i)^(\s*[\"']?){name}(\[[^\]]*\])?", text)
    if bare:
        return text[: bare.end()] + f">={up.to_version}" + text[bare.end() :]
    return None


def _raise_toml_floor(text: str, key: re.Match[str], up: Upgrade, *, poetry: bool) -> str | None:
    rest = key.group(2)
    if rest.lstrip().startswith("{"):
        m = re.search(r"(\bversion\s*=\s*)([\"'])([^\"']*)\2", rest)
    else:
        m = re.match(r"(\s*)([\"'])([^\"']*)\2", rest)
    if m is None:
        return None
    spec = _floor_spec(m.group(3), up.to_version, poetry=poetry)
    if spec is None:
        return None
    return key.group(1) + rest[: m.start(3)] + spec + rest[m.end(3) :]


def _floor_spec(spec: str, to: str, *, poetry: bool) -> str | None:
    """`^1.26` -> `>=1.26.18,<2`: the new floor, and the old upper bounds when they still
    admit it. None for alternatives (`||`), which a human should rewrite."""
    text = spec.strip()
    if "||" in text:
        return None
    try:
        pep = "" if text in ("", "*") else poetry_to_pep440(text) if poetry else text
        parsed = SpecifierSet(pep)
    except (ValueError, InvalidSpecifier):
        return None
    uppers: list[str] = []
    for s in parsed:
        if s.operator in ("<", "<=", "!="):
            uppers.append(str(s))
        elif s.operator == "~=" or (s.operator == "==" and s.version.endswith(".*")):
            release = Version(s.version.removesuffix(".*")).release
            head = release[:-1] if s.operator == "~=" and len(release) > 1 else release
            uppers.append("<" + ".".join(map(str, (*head[:-1], head[-1] + 1))))
    out = [f">={to}", *uppers]
    if not SpecifierSet(",".join(out)).contains(to, prereleases=True):
        out = [f">={to}", *(u for u in uppers if u.startswith("!="))]
    return ",".join(out)


_INCLUDE = re.compile(r"^\s*(?:-r|--requirement)(?:\s*=\s*|\s+|(?=[^\s=-]))(\S+)", re.M)


def hashed_requirement_files(root: Path, files: Sequence[str]) -> tuple[str, ...]:
    """The requirement files pip will install in hash-checking mode (they, or a file they
    include, carry `--hash`)."""

    def hashed(path: Path, seen: set[Path]) -> bool:
        real = path.resolve()
        if real in seen or not repo_file(real, root):
            return False
        seen.add(real)
        try:
            text = real.read_text(errors="replace")
        except OSError:
            return False
        if re.search(r"(?m)--hash[=\s]", text):
            return True
        return any(hashed(real.parent / inc, seen) for inc in _INCLUDE.findall(text))

    return tuple(f for f in files if hashed(root / f, set()))
