"""Rewrite the file hashes of one bumped package, keeping the manifest's own layout.

A pin bump in a file that carries hashes must change the hashes too, or pip's hash-checking
mode rejects the new files. Each function here takes the text of one entry (the physical
lines of a requirement, a lock's package block) and the files of the new release, and
returns the entry with its hashes replaced: same indentation, same continuation style,
same key order, one template entry reused for every new file.

requirements   `--hash=sha256:...` tokens, inline or one per continuation line
poetry.lock    `files = [{file, hash}, ...]` in the package block, or `[metadata.files]`
uv.lock        `sdist = {url, hash, size, upload-time}` and `wheels = [...]`
pylock.toml    `sdist = {name, url, size, upload-time, hashes = {sha256}}`, `wheels = [...]`
Pipfile.lock   `"hashes": ["sha256:...", ...]`
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from corral.workflows.cve.index import ReleaseFile

_HASH_TOKEN = re.compile(r"(?P<pre>\s*)--hash(?P<sep>\s*=\s*|\s+)[A-Za-z0-9_]+:[0-9A-Fa-f]+")
_CONT = re.compile(r"(?P<cont>\s*\\)(?P<eol>\r?\n?)$")
_HEADER = re.compile(r"^\s*\[")
_VALUE = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|\{[^{}]*\}|[^,}\s]+"
_PAIR = re.compile(rf"(?P<key>[A-Za-z0-9_-]+|\"[^\"]*\")\s*=\s*(?P<value>{_VALUE})")
_ARRAY = re.compile(r"^(?P<head>\s*(?P<key>[^=\s]+)\s*=\s*\[)(?P<rest>.*?)(?P<eol>\r?\n?)$")
_ARRAY_KEYS = {"files": "all", "wheels": "wheels"}


class RehashError(ValueError):
    """The entry has hashes in a layout we do not rewrite; a human must refresh them."""


def _eol(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


# -- requirements files ------------------------------------------------------------------


def requirement_end(lines: Sequence[str], start: int) -> int:
    """Index after the last physical line of the logical line starting at `start`."""
    i = start
    while i < len(lines) and lines[i].rstrip("\r\n").endswith("\\"):
        i += 1
    return min(i + 1, len(lines))


def requirement_hashed(block: Sequence[str]) -> bool:
    return any(_HASH_TOKEN.search(line) for line in block)


def rehash_requirement(block: Sequence[str], files: Sequence[ReleaseFile]) -> list[str]:
    """The requirement's lines with its `--hash` options replaced by the new digests."""
    digests = sorted({f.sha256 for f in files})
    first = _HASH_TOKEN.search("".join(block))
    sep = "=" if first is None or "=" in first["sep"] else " "
    tokens = [f"--hash{sep}sha256:{d}" for d in digests]
    only = [i for i, line in enumerate(block) if _hash_only(line)]
    if not only:  # tokens on the requirement line itself: the first becomes all of them
        out, placed = [], False
        for line in block:
            body, eol = line.rstrip("\r\n"), _eol(line)
            if not placed and (m := _HASH_TOKEN.search(body)):
                body = body[: m.start()] + m["pre"] + " ".join(tokens) + body[m.end() :]
                placed = True
            body = _strip_tokens(body, keep=" ".join(tokens)) if placed else body
            out.append(body + eol)
        return out
    template = block[only[0]]
    indent = template[: len(template) - len(template.lstrip())]
    cont = next((m["cont"] for i in only if (m := _CONT.search(block[i]))), None)
    if cont is None:
        m = _CONT.search(block[0])
        cont = m["cont"] if m else " \\"
    eol = _eol(template) or _eol(block[0]) or "\n"
    kept = [(i, line) for i, line in enumerate(block) if i not in only]
    before = [_strip_tokens(line.rstrip("\r\n")) for i, line in kept if i < only[0]]
    after = [_strip_tokens(line.rstrip("\r\n")) for i, line in kept if i > only[0]]
    bodies = [*before, *(indent + t for t in tokens), *after]
    out = []
    for n, body in enumerate(bodies):
        body = _CONT.sub("", body)
        last = n == len(bodies) - 1
        out.append(body + ("" if last else cont) + ("" if last and not _eol(block[-1]) else eol))
    return out


def _hash_only(line: str) -> bool:
    body = _CONT.sub("", line.rstrip("\r\n"))
    return bool(_HASH_TOKEN.search(body)) and not _HASH_TOKEN.sub("", body).strip()


def _strip_tokens(body: str, keep: str = "") -> str:
    """Drop every `--hash` token except the joined new ones (`keep`)."""
    if keep and keep in body:
        head, _, tail = body.partition(keep)
        return head + keep + _HASH_TOKEN.sub("", tail)
    return _HASH_TOKEN.sub("", body)


# -- TOML locks: poetry.lock, uv.lock, pylock.toml -----------------------------------------


def toml_region(lines: Sequence[str], start: int, table: str) -> tuple[int, int]:
    """(end of the package's own keys, end of its sub-tables) from its `name` line."""
    top = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    own = re.compile(rf"^\s*\[\[?{re.escape(table)}\.")
    end = top
    while end < len(lines) and own.match(lines[end]):
        end += 1
        while end < len(lines) and not _HEADER.match(lines[end]):
            end += 1
    return top, end


def toml_hashed(text: str) -> bool:
    """An entry with file hashes (an empty `files = []` has none to refresh)."""
    return bool(re.search(r"\bhash(es)?\s*=", text))


def rehash_toml(block: Sequence[str], files: Sequence[ReleaseFile]) -> list[str]:
    """A package block with `files`/`wheels` arrays and the `sdist` table rewritten."""
    wheels = [f for f in files if f.is_wheel]
    sdists = sorted(
        (f for f in files if not f.is_wheel), key=lambda f: not f.filename.endswith(".tar.gz")
    )
    out: list[str] = []
    i = 0
    sdist_template: str | None = None
    had_wheels = False
    while i < len(block):
        line = block[i]
        m = _ARRAY.match(line)
        if m and m["key"] in _ARRAY_KEYS:
            chosen = files if _ARRAY_KEYS[m["key"]] == "all" else wheels
            had_wheels |= m["key"] == "wheels"
            lines, i = _rewrite_array(block, i, m, chosen)
            out += lines
            continue
        s = re.match(r"^(?P<head>\s*sdist\s*=\s*)(?P<table>\{.*\})(?P<tail>\s*)$", line)
        if s:
            sdist_template = s["table"]
            if sdists:
                out.append(s["head"] + _render(s["table"], sdists[0]) + s["tail"])
            i += 1
            continue
        if re.match(r"^\s*sdist\s*=", line):
            raise RehashError("an sdist entry that spans lines")
        out.append(line)
        i += 1
    if wheels and not had_wheels and sdist_template is not None:
        eol = _eol(block[0]) or "\n"
        out += ["wheels = [" + eol, *(f"    {_render(sdist_template, w)},{eol}" for w in wheels)]
        out.append("]" + eol)
    return out


def _rewrite_array(
    block: Sequence[str], i: int, m: re.Match[str], chosen: Sequence[ReleaseFile]
) -> tuple[list[str], int]:
    rest = m["rest"]
    if "]" in rest:  # one line: `wheels = [{...}, {...}]`
        entries = _inline_tables(rest)
        if not entries:
            return [block[i]], i + 1
        close = rest[rest.rindex("]") :]
        sep = ", " if ", " in rest else ","
        body = sep.join(_render(entries[0], f) for f in chosen)
        return [m["head"] + body + close + m["eol"]], i + 1
    j = i + 1
    items: list[re.Match[str]] = []
    while j < len(block) and not block[j].strip().startswith("]"):
        item = re.match(r"^(?P<indent>\s*)(?P<table>\{.*\})(?P<comma>\s*,?)\s*$", block[j])
        if item is None:
            if block[j].strip():
                raise RehashError(f"an unexpected line in the `{m['key']}` array")
        else:
            items.append(item)
        j += 1
    if j >= len(block):
        raise RehashError(f"the `{m['key']}` array does not close")
    if not items:
        return [*block[i : j + 1]], j + 1
    eol = _eol(block[i]) or "\n"
    first = items[0]
    comma_last = items[-1]["comma"].strip() == ","
    lines = [block[i]]
    for n, f in enumerate(chosen):
        comma = first["comma"] if n < len(chosen) - 1 or comma_last else ""
        lines.append(f"{first['indent']}{_render(first['table'], f)}{comma}{eol}")
    lines.append(block[j])
    return lines, j + 1


def _inline_tables(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    quote: str | None = None
    for k, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
            start = k if depth == 1 else start
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start : k + 1])
    return out


def _render(template: str, f: ReleaseFile) -> str:
    """The template inline table with this file's values; keys we cannot fill are dropped."""
    pairs = list(_PAIR.finditer(template[1:-1]))
    if not pairs:
        raise RehashError(f"cannot read the entry {template[:60]!r}")
    inner = template[1:-1]
    open_ = "{" + inner[: pairs[0].start()]
    close = inner[pairs[-1].end() :] + "}"
    sep = inner[pairs[0].end() : pairs[1].start()] if len(pairs) > 1 else ", "
    eq = re.search(r"\s*=\s*", pairs[0].group(0))
    assign = eq.group(0) if eq else " = "
    out = []
    for p in pairs:
        value = _value_for(p["key"].strip('"'), p["value"], f)
        if value is not None:
            out.append(f"{p['key']}{assign}{value}")
    return open_ + sep.join(out) + close


def _value_for(key: str, old: str, f: ReleaseFile) -> str | None:
    if key in ("file", "name", "filename"):
        return _q(f.filename)
    if key == "url":
        if f.url is None:
            raise RehashError(f"no URL known for {f.filename}")
        return _q(f.url)
    if key == "hash":
        return _q(f"sha256:{f.sha256}")
    if key == "hashes":
        pad = " " if old.startswith("{ ") else ""
        return f"{{{pad}sha256 = {_q(f.sha256)}{pad}}}"
    if key == "size":
        return str(f.size) if f.size is not None else None
    if key == "upload-time":
        if f.upload_time is None:
            return None
        return _q(f.upload_time) if old[:1] in "\"'" else f.upload_time
    return None  # anything else described the old file: stale, so left out


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def poetry_metadata_entry(lines: Sequence[str], package: str) -> tuple[int, int] | None:
    """(start, end) of `name = [...]` under a legacy `[metadata.files]` table, if any."""
    header = next((i for i, line in enumerate(lines) if line.strip() == "[metadata.files]"), None)
    if header is None:
        return None
    name = re.escape(package).replace("\\-", "[-_.]").replace("\\.", "[-_.]").replace("_", "[-_.]")
    key = re.compile(rf"^\s*[\"']?{name}[\"']?\s*=\s*\[", re.I)
    for i in range(header + 1, len(lines)):
        if _HEADER.match(lines[i]):
            return None
        if key.match(lines[i]):
            j = i
            while j < len(lines) and not lines[j].rstrip().endswith("]"):
                j += 1
            return i, min(j + 1, len(lines))
    return None


def rehash_poetry_metadata(block: Sequence[str], files: Sequence[ReleaseFile]) -> list[str]:
    """`name = [{file, hash}, ...]` under `[metadata.files]` (poetry before lock 2.0)."""
    m = _ARRAY.match(block[0])
    if m is None:
        raise RehashError("cannot read the [metadata.files] entry")
    return _rewrite_array(block, 0, m, files)[0]


# -- Pipfile.lock --------------------------------------------------------------------------


def json_entry_end(lines: Sequence[str], start: int) -> int:
    """Index after the line that closes the object opened on line `start`."""
    depth = 0
    quote = False
    for i in range(start, len(lines)):
        escaped = False
        for ch in lines[i]:
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    quote = False
            elif ch == '"':
                quote = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
    return len(lines)


def pipfile_hashed(text: str) -> bool:
    return bool(re.search(r"\"hashes\"\s*:\s*\[\s*\"", text))


def rehash_pipfile(block: Sequence[str], files: Sequence[ReleaseFile]) -> list[str]:
    """The entry's `"hashes"` array holding exactly the new digests, sorted as pipenv does."""
    digests = [f"sha256:{d}" for d in sorted({f.sha256 for f in files})]
    for i, line in enumerate(block):
        m = re.match(r"^(?P<head>\s*\"hashes\"\s*:\s*\[)(?P<rest>.*?)(?P<eol>\r?\n?)$", line)
        if m is None:
            continue
        if "]" in m["rest"]:
            close = m["rest"][m["rest"].rindex("]") :]
            body = ", ".join(f'"{d}"' for d in digests)
            return [*block[:i], m["head"] + body + close + m["eol"], *block[i + 1 :]]
        j = i + 1
        while j < len(block) and not block[j].strip().startswith("]"):
            j += 1
        if j >= len(block) or j == i + 1:
            raise RehashError("cannot read the `hashes` array")
        indent = block[i + 1][: len(block[i + 1]) - len(block[i + 1].lstrip())]
        eol = m["eol"] or "\n"
        new = [
            f'{indent}"{d}"{"," if n < len(digests) - 1 else ""}{eol}'
            for n, d in enumerate(digests)
        ]
        return [*block[: i + 1], *new, *block[j:]]
    raise RehashError("no `hashes` array in the entry")
