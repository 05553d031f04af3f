"""A migration cut into PR-sized subtasks, dependencies first.

How the cut is made:
1. Files with sites are found (`sites`), and Python files' imports read (`imports`).
2. File A *depends on* file B when A reaches B through imports, directly or through
   files with no sites. Files that reach each other (an import cycle) must change
   together: they form one group.
3. Each group gets a level: 0 if it depends on no other group, else one more than the
   highest level it depends on. Groups of one level never depend on each other.
4. Within a level, groups are packed in path order (neighbours stay together) into
   subtasks of at most `max_files` files and `max_sites` sites; a group bigger than
   that is a subtask of its own, marked oversize.
5. A subtask depends on the subtasks holding the nearest files its files depend on (the
   rest follow through those). With `order: none` nothing depends on anything.

The same repo and spec always give the same plan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.workflows.refactor.imports import import_graph
from corral.workflows.refactor.sites import FileSites, find_sites, repo_files
from corral.workflows.refactor.spec import RefactorSpec


@dataclass(frozen=True)
class Subtask:
    id: str
    files: tuple[FileSites, ...]
    depends_on: tuple[str, ...]
    level: int
    note: str = ""  # why it is bigger than the limits, if it is

    @property
    def sites(self) -> int:
        return sum(len(f.sites) for f in self.files)


@dataclass(frozen=True)
class RefactorPlan:
    spec: RefactorSpec
    repo: Path
    subtasks: tuple[Subtask, ...]
    searched: int
    skipped: dict[str, str]

    @property
    def files(self) -> int:
        return sum(len(s.files) for s in self.subtasks)

    @property
    def sites(self) -> int:
        return sum(s.sites for s in self.subtasks)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "repo": str(self.repo),
            "files_searched": self.searched,
            "files": self.files,
            "sites": self.sites,
            "levels": 1 + max((s.level for s in self.subtasks), default=-1),
            "skipped": dict(self.skipped),
            "subtasks": [
                {
                    "id": s.id,
                    "level": s.level,
                    "depends_on": list(s.depends_on),
                    "sites": s.sites,
                    "note": s.note,
                    "files": [
                        {"path": f.path, "lines": [site.line for site in f.sites]} for f in s.files
                    ],
                }
                for s in self.subtasks
            ],
        }


def make_plan(repo: Path, spec: RefactorSpec) -> RefactorPlan:
    """Find the sites in `repo` and cut them into subtasks (see the module docstring)."""
    paths = repo_files(repo)
    found = find_sites(repo, spec, paths)
    affected = [f.path for f in found.files]
    if spec.order == "imports":
        deps = _file_deps(import_graph(repo, paths), affected)
    else:
        deps = {p: set() for p in affected}
    groups = _groups(affected, deps)
    subtasks = _pack(groups, deps, {f.path: f for f in found.files}, spec)
    return RefactorPlan(spec, repo, subtasks, found.searched, found.skipped)


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components, each after every component it reaches (iterative
    Tarjan: a long import chain must not hit Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue  # not a node (a data file an import names)
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                out.append(sorted(comp))
    return out


def _file_deps(graph: dict[str, set[str]], affected: list[str]) -> dict[str, set[str]]:
    """Affected file -> the nearest affected files it reaches through imports (through
    files without sites, not through other affected ones: those bring the rest along),
    and its cycle mates. Linear in the graph for the usual shapes: a long chain of 8,000
    files took 11 s and 32M set entries when every reachable file was listed."""
    is_affected = set(affected)
    full = {p: set(targets) for p, targets in graph.items()}
    for p in affected:
        full.setdefault(p, set())
    comps = _sccs(full)
    comp_of = {p: i for i, comp in enumerate(comps) for p in comp}
    mine = [[p for p in comp if p in is_affected] for comp in comps]
    # Per component: the nearest components with sites below it (dependencies first).
    near: list[frozenset[int]] = []
    for i, comp in enumerate(comps):
        succ = {comp_of[t] for p in comp for t in full[p] if t in comp_of} - {i}
        direct = {j for j in succ if mine[j]}
        via = [near[j] for j in succ if not mine[j] and near[j]]
        if not direct and len(via) == 1:
            near.append(via[0])  # shared, not copied: a long chain costs nothing
        else:
            near.append(frozenset(direct.union(*via)))
    deps: dict[str, set[str]] = {}
    for p in affected:
        c = comp_of[p]
        deps[p] = {q for j in near[c] for q in mine[j]} | {q for q in mine[c] if q != p}
    return deps


def _groups(affected: list[str], deps: dict[str, set[str]]) -> list[list[str]]:
    """Files that depend on each other, together; dependencies first."""
    return _sccs({p: deps[p] for p in affected})


def _pack(
    groups: list[list[str]],
    deps: dict[str, set[str]],
    sites: dict[str, FileSites],
    spec: RefactorSpec,
) -> tuple[Subtask, ...]:
    group_of = {p: i for i, g in enumerate(groups) for p in g}
    level: list[int] = []
    for g in groups:  # dependencies first, so their levels are known
        below = [level[group_of[d]] for p in g for d in deps[p] if group_of[d] != group_of[p]]
        level.append(1 + max(below) if below else 0)
    chunks: list[tuple[int, list[str], str]] = []
    by_level: dict[int, list[list[str]]] = {}
    for i, g in enumerate(groups):
        by_level.setdefault(level[i], []).append(g)
    for lv in sorted(by_level):
        packed: list[tuple[str, list[str]]] = []  # (dir, files), one dir each
        for g in sorted(by_level[lv], key=lambda g: (_dir(g), g[0])):
            n_sites = _count(g, sites)
            if len(g) > spec.max_files or n_sites > spec.max_sites:
                note = (
                    f"an import cycle of {len(g)} files with {n_sites} sites: they change together"
                    if len(g) > 1
                    else f"one file with {n_sites} sites"
                )
                chunks.append((lv, sorted(g), note))
                continue
            if packed and packed[-1][0] == _dir(g) and _fits(packed[-1][1], g, sites, spec):
                packed[-1][1].extend(g)
            else:
                packed.append((_dir(g), list(g)))
        # A dir's last, partly filled subtask takes in its siblings' when they fit.
        merged: list[tuple[str, list[str]]] = []
        for where, files in packed:
            prev = merged[-1] if merged else None
            if (
                prev is not None
                and _parent(prev[0]) == _parent(where)
                and _fits(prev[1], files, sites, spec)
            ):
                prev[1].extend(files)
            else:
                merged.append((where, files))
        chunks.extend((lv, files, "") for _where, files in merged)
    chunks.sort(key=lambda c: (c[0], c[1][0]))
    ids = _ids([files for _lv, files, _note in chunks])
    chunk_of = {p: i for i, (_lv, files, _n) in enumerate(chunks) for p in files}
    needs = [
        {chunk_of[d] for p in files for d in deps[p]} - {i}
        for i, (_lv, files, _n) in enumerate(chunks)
    ]
    direct = _reduce(needs)
    return tuple(
        Subtask(
            id=ids[i],
            files=tuple(sites[p] for p in sorted(files)),
            depends_on=tuple(ids[j] for j in sorted(direct[i])),
            level=lv,
            note=note,
        )
        for i, (lv, files, note) in enumerate(chunks)
    )


def _dir(files: list[str]) -> str:
    return (
        str(Path(os.path.commonpath(files)).parent)
        if len(files) == 1
        else (os.path.commonpath(files) or ".")
    )


def _parent(where: str) -> str:
    return str(Path(where).parent)


def _count(files: list[str], sites: dict[str, FileSites]) -> int:
    return sum(len(sites[p].sites) for p in files)


def _fits(
    current: list[str], more: list[str], sites: dict[str, FileSites], spec: RefactorSpec
) -> bool:
    return (
        len(current) + len(more) <= spec.max_files
        and _count(current, sites) + _count(more, sites) <= spec.max_sites
    )


def _reduce(needs: list[set[int]]) -> list[set[int]]:
    """Drop a dependency that another dependency already lists (the order still holds
    through that one)."""
    return [{j for j in need if not any(j in needs[k] for k in need if k != j)} for need in needs]


_SLUG = re.compile(r"[^A-Za-z0-9_\-]+")  # ids are git branch name parts: no dots


def _ids(chunks: list[list[str]]) -> list[str]:
    """`007-pkg-sub`: order, then where the files are (their common dir, or the file)."""
    width = max(3, len(str(len(chunks))))
    out = []
    for i, files in enumerate(chunks, start=1):
        parts = [Path(f).parts for f in files]
        common: list[str] = []
        for level in zip(*parts, strict=False):
            if len(set(level)) != 1:
                break
            common.append(level[0])
        if len(files) == 1:
            common = [*Path(files[0]).parent.parts, Path(files[0]).stem]
        elif len(common) < len(parts[0]) - 1:  # several dirs: name the first
            common.append(parts[0][len(common)])
        where = _SLUG.sub("-", "-".join(common))[:60].strip("-_") or "root"
        out.append(f"{i:0{width}d}-{where}")
    return out
