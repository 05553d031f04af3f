"""Which files import which: the order a migration's subtasks run in.

Python and JavaScript/TypeScript are read; other files have no edges (level 0).

A file's module name comes from its package: the dirs above it that hold an
`__init__.py` (so `src/pkg/mod.py` is `pkg.mod`); a file outside any package is its
path with dots. Imports are read from the syntax tree (relative ones by the files'
places, so namespace packages count too); one that names no file of the repo (the
standard library, a dependency) is no edge. Only the module an import names counts, not
the package inits Python runs on the way: a package whose `__init__` re-exports its
modules would otherwise be one big cycle.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path, PurePosixPath

from corral.workflows.refactor.sites import MAX_FILE_BYTES

JS_EXT = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")
# import ... from "x" / import "x" / export ... from "x" / require("x") / import("x")
_JS_IMPORT = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["'](\.{1,2}/[^"'\n]*)["']"""
)


def module_names(paths: list[str], repo: Path) -> dict[str, str]:
    """Dotted module name -> file, for every .py file in `paths`."""
    has_init = {str(PurePosixPath(p).parent) for p in paths if p.endswith("/__init__.py")}
    if (repo / "__init__.py").exists():
        has_init.add(".")
    index: dict[str, str] = {}
    for p in paths:
        if not p.endswith(".py"):
            continue
        parts = list(PurePosixPath(p).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        # The package root: the highest dir of an unbroken chain of __init__.py dirs.
        top = len(parts) - 1 if not p.endswith("/__init__.py") else len(parts)
        while top > 0 and "/".join(parts[:top]) in has_init:
            top -= 1
        name = ".".join(parts[top:])
        if name:
            index.setdefault(name, p)
        if top == len(parts) - 1:  # in no regular package: maybe a namespace package's
            for k in range(len(parts) - 1):  # (`src/ns/lib/core.py` is `ns.lib.core`)
                index.setdefault(".".join(parts[k:]), p)
    return index


def _relative(
    here: str, level: int, module: str | None, names: list[str], files: frozenset[str]
) -> set[str]:
    """A relative import names files by their place, whether the packages on the way have
    an `__init__.py` or are namespace packages: `from ..a import b` in `x/y/m.py` is
    `x/a/b.py`, or else `x/a.py`. The repo's root is where imports start (unless it has an
    `__init__.py` itself), so nothing resolves to a module there or above."""
    up = here
    for _ in range(level - 1):
        if not up:
            return set()
        up = posixpath.dirname(up)
    if not up and "__init__.py" not in files:
        return set()
    base = posixpath.join(up, *module.split(".")) if module else up
    found: set[str] = set()
    attributes = not names
    for name in names:  # a submodule, or else an attribute of `module`
        hit = _module_file(posixpath.join(base, name), files)
        if hit is None:
            attributes = True
        else:
            found.add(hit)
    if attributes and module:
        hit = _module_file(base, files)
        if hit is not None:
            found.add(hit)
    return found


def _module_file(base: str, files: frozenset[str]) -> str | None:
    return next((c for c in (f"{base}.py", f"{base}/__init__.py") if c in files), None)


def imports_of(
    path: str, source: str, index: dict[str, str], files: frozenset[str] = frozenset()
) -> set[str]:
    """Files of the repo that `path` imports; an absolute import is looked for beside the
    file first (a script's or test's own dir is first on sys.path)."""
    here = posixpath.dirname(path)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()

    def add(module: str, names: list[str]) -> None:
        attributes = not names  # `import a.b`: the module itself
        for name in names:  # `from pkg import mod` names the submodule, not pkg's init
            hit = index.get(f"{module}.{name}")
            if hit is not None:
                found.add(hit)
            else:
                attributes = True
        if not attributes:
            return
        beside = _module_file(posixpath.join(here, module.replace(".", "/")), files)
        if beside is not None:
            found.add(beside)
            return
        parts = module.split(".")
        while parts:  # `import a.b.c` runs a, a.b and a.b.c: the deepest known is enough
            hit = index.get(".".join(parts))
            if hit is not None:
                found.add(hit)
                return
            parts.pop()

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names if a.name != "*"]
            if node.level:
                found |= _relative(here, node.level, node.module, names, files)
            elif node.module:
                add(node.module, names)
    found.discard(path)
    return found


def js_imports_of(path: str, source: str, files: set[str]) -> set[str]:
    """Files of the repo that a JS/TS file imports by relative path (`./x`, `../y`);
    a package import (`react`) is no edge."""
    found: set[str] = set()
    here = posixpath.dirname(path)
    for spec in _JS_IMPORT.findall(source):
        base = posixpath.normpath(posixpath.join(here, spec))
        stem, ext = posixpath.splitext(base)
        candidates = [*(base + e for e in JS_EXT), *(f"{base}/index{e}" for e in JS_EXT)]
        if ext in JS_EXT:  # named with its extension; a stylesheet or JSON file is no edge
            candidates.insert(0, base)
        if ext in (".js", ".jsx", ".mjs", ".cjs"):  # TypeScript imports its own .ts as .js
            candidates += [stem + e for e in (".ts", ".tsx", ".mts", ".cts")]
        hit = next((c for c in candidates if c in files), None)
        if hit is not None and hit != path:
            found.add(hit)
    return found


def import_graph(repo: Path, paths: list[str]) -> dict[str, set[str]]:
    """Every Python or JS/TS file of `paths` -> the repo's files it imports."""
    index = module_names(paths, repo)
    files = set(paths)
    frozen = frozenset(files)
    graph: dict[str, set[str]] = {}
    for p in paths:
        is_js = p.endswith(JS_EXT)
        if not p.endswith(".py") and not is_js:
            continue
        full = repo / p
        graph[p] = set()
        try:  # never a symlink (it could name /dev/zero) nor a huge file
            if full.is_symlink() or not full.is_file() or full.stat().st_size > MAX_FILE_BYTES:
                continue
            source = full.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if is_js:
            graph[p] = js_imports_of(p, source, files)
        else:
            graph[p] = imports_of(p, source, index, frozen)
    return graph
