"""Which Python files import which: the order a migration's subtasks run in.

A file's module name comes from its package: the dirs above it that hold an
`__init__.py` (so `src/pkg/mod.py` is `pkg.mod`); a file outside any package is its
path with dots. Imports are read from the syntax tree (relative ones included); one
that names no file of the repo (the standard library, a dependency) is no edge. Only
the module an import names counts, not the package inits Python runs on the way: a
package whose `__init__` re-exports its modules would otherwise be one big cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath


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
        index.setdefault(".".join(parts), p)  # the path itself, for scripts run from the root
    return index


def _package(path: str, index_name: str) -> list[str]:
    parts = index_name.split(".") if index_name else []
    return parts if path.endswith("__init__.py") else parts[:-1]


def imports_of(path: str, source: str, index: dict[str, str], own: str) -> set[str]:
    """Files of the repo that `path` (module `own`) imports."""
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
                base = _package(path, own)
                if node.level - 1 > len(base):
                    continue  # beyond the top package
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module:
                add(module, names)
            else:  # `from . import x` at the top package
                for name in names:
                    hit = index.get(name)
                    if hit is not None:
                        found.add(hit)
    found.discard(path)
    return found


def import_graph(repo: Path, paths: list[str]) -> dict[str, set[str]]:
    """Every .py file of `paths` -> the repo's files it imports."""
    index = module_names(paths, repo)
    own = {file: name for name, file in sorted(index.items(), key=lambda kv: -len(kv[0]))}
    graph: dict[str, set[str]] = {}
    for p in paths:
        if not p.endswith(".py"):
            continue
        try:
            source = (repo / p).read_text(encoding="utf-8", errors="replace")
        except OSError:
            graph[p] = set()
            continue
        graph[p] = imports_of(p, source, index, own.get(p, ""))
    return graph
