"""A compact map of a repository for the agent's first prompt.

The model should know where to look before its first command. The map lists files with
their top-level definitions (Python via `ast`, other languages via simple regexes),
ranked by a small, explainable relevance score against the task, and cut to a token
budget (~4 characters per token). It runs on the host, in a thread, over the
workspace's copy before the agent's first step, and only reads: no symlink is followed
and vendored, generated or binary files are skipped.

Score of a file (higher first; ties: shallower path, then name):
  +10  the task names the file's path (or its file name)
  +5   per task identifier that equals a definition in the file
  +4   the file's stem equals a task word          (+2 per other task word in the path)
  +1   per task word found inside definition names (snake/camel parts)
  +2   a test file that already scores           (tests show how the code is used)
  +2   imported by a file that scores            (where the relevant code lives)
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

CHARS_PER_TOKEN = 4
MAX_FILES = 5000
MAX_FILE_BYTES = 400_000
MAX_DEFS_PER_FILE = 25
MAX_TEST_DEFS = 8  # test names are many and alike; a few show the style
MAX_METHODS = 12

SKIP_DIRS = set(
    (
        ".git .hg .svn node_modules .venv venv env __pycache__ build dist target out .tox "
        ".nox .mypy_cache .pytest_cache .ruff_cache .eggs site-packages .next .cache vendor "
        "coverage .idea .corral"
    ).split()
)
# Binary, media and generated files: nothing a model can read usefully.
SKIP_EXT = set(
    (
        ".png .jpg .jpeg .gif .bmp .ico .webp .pdf .zip .gz .tgz .bz2 .xz .7z .tar .jar .war "
        ".class .so .dylib .dll .exe .o .a .pyc .pyo .whl .woff .woff2 .ttf .otf .eot .mp3 "
        ".mp4 .mov .wav .sqlite .db .bin .parquet .npy .pkl .lock"
    ).split()
)
STOPWORDS = set(
    (
        "the and for with that this from into when then than should must does not are was "
        "were has have make fix add use all any but can its our your which what why how file "
        "files code function method class bug issue test tests failing fails error return "
        "returns value new instead"
    ).split()
)

_R = re.MULTILINE
LANG_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "js": [
        re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s+(\w+)", _R),
        re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+(\w+)", _R),
        re.compile(r"^\s*(?:export\s+)?(?:interface|type|enum)\s+(\w+)", _R),
        re.compile(
            r"^(?:export\s+)?(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?\(?[\w\s,]*\)?\s*=>", _R
        ),
    ],
    "go": [
        re.compile(r"^func\s+(?:\([^)]*\)\s*)?(\w+)\s*\(", _R),
        re.compile(r"^type\s+(\w+)\s+(?:struct|interface)", _R),
    ],
    "rs": [
        re.compile(
            r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:fn|struct|enum|trait)\s+(\w+)", _R
        )
    ],
    "java": [
        re.compile(
            r"^\s*(?:public|private|protected)?\s*(?:abstract\s+|final\s+|static\s+)*"
            r"(?:class|interface|enum|record)\s+(\w+)",
            _R,
        ),
        re.compile(
            r"^\s+(?:public|private|protected)\s+(?:static\s+)?(?:final\s+)?"
            r"[\w<>\[\], ]+\s+(\w+)\s*\(",
            _R,
        ),
    ],
    "rb": [re.compile(r"^\s*(?:class|module|def)\s+(?:self\.)?([\w:?!]+)", _R)],
    "sh": [re.compile(r"^\s*(?:function\s+)?([\w-]+)\s*\(\)\s*\{?", _R)],
    "py": [re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", _R)],  # fallback on bad syntax
}
EXT_LANG = {
    ".js": "js",
    ".jsx": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".ts": "js",
    ".tsx": "js",
    ".go": "go",
    ".rs": "rs",
    ".java": "java",
    ".kt": "java",
    ".rb": "rb",
    ".sh": "sh",
    ".bash": "sh",
    ".py": "py",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class FileInfo:
    path: str  # POSIX, relative to the root
    defs: list[str] = field(default_factory=list)  # display lines
    names: set[str] = field(default_factory=set)  # definition names
    imports: set[str] = field(default_factory=set)  # module-ish names it imports
    score: float = 0.0


def split_words(name: str) -> list[str]:
    """`parseHTTPResponse_v2` → parse, http, response, v2 (lower case)."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)
    return [p.lower() for p in parts if p]


def task_terms(task: str) -> tuple[set[str], set[str]]:
    """Identifiers the task names verbatim, and the meaningful words in it."""
    idents = {w.lower() for w in _WORD.findall(task) if len(w) >= 3}
    words = {p for w in _WORD.findall(task) for p in [w.lower(), *split_words(w)]}
    return idents - STOPWORDS, {w for w in words if len(w) >= 3} - STOPWORDS


def _is_test(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_test.go", "_spec.rb"))
        or ".test." in name
        or ".spec." in name
        or "/tests/" in f"/{path}"
        or "/test/" in f"/{path}"
    )


def _py_signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [x.arg for x in a.kwonlyargs]
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    sig = ", ".join(names)
    if len(sig) > 60:
        sig = sig[:57] + "..."
    prefix = "async def" if isinstance(fn, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {fn.name}({sig})"


# Parsed definitions by content: a fleet maps the same files for attempt after attempt,
# and parsing (`ast`) is what a map costs; reading and hashing a file is far cheaper.
_Parsed = tuple[tuple[str, ...], frozenset[str], frozenset[str]]  # defs, names, imports
_PARSED: OrderedDict[tuple[str, bytes], _Parsed] = OrderedDict()
_PARSED_MAX = 20_000
_PARSED_LOCK = threading.Lock()  # maps are built in worker threads too


def _parse(info: FileInfo, data: bytes, lang: str) -> None:
    key = (lang, hashlib.blake2b(data, digest_size=16).digest())
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
    if hit is not None:
        info.defs, info.names, info.imports = list(hit[0]), set(hit[1]), set(hit[2])
        return
    text = data.decode("utf-8", "replace")
    if lang == "py":
        _parse_python(info, text)
    else:
        _parse_regex(info, text, lang)
    with _PARSED_LOCK:
        _PARSED[key] = (tuple(info.defs), frozenset(info.names), frozenset(info.imports))
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)


# CPython 3.11's ast.parse counts its depth in interpreter-wide state: when the collector
# runs a finalizer mid-parse and another thread parses meanwhile, it fails with "SystemError:
# AST constructor recursion depth mismatch". Repo maps are built in several threads at once.
_AST_LOCK = threading.Lock()


def _parse_python(info: FileInfo, text: str) -> None:
    try:
        with _AST_LOCK:
            tree = ast.parse(text)
    except (SyntaxError, ValueError):
        _parse_regex(info, text, "py")
        return
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = [
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            info.names.add(node.name)
            info.names.update(methods)
            shown = ", ".join(methods[:MAX_METHODS]) + (
                " ..." if len(methods) > MAX_METHODS else ""
            )
            info.defs.append(f"class {node.name}" + (f": {shown}" if shown else ""))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            info.names.add(node.name)
            info.defs.append(_py_signature(node))
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Import):
            info.imports.update(alias.name for alias in sub.names)
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            info.imports.add(sub.module)
            info.imports.update(f"{sub.module}.{alias.name}" for alias in sub.names)


def _parse_regex(info: FileInfo, text: str, lang: str) -> None:
    seen: set[str] = set()
    for pattern in LANG_PATTERNS[lang]:
        for m in pattern.finditer(text):
            name = m.group(1)
            if name in seen or name in {"if", "for", "while", "switch", "return", "new"}:
                continue
            seen.add(name)
            info.names.add(name)
            info.defs.append(m.group(0).strip().rstrip("{(= ").strip())
    if lang == "js":
        info.imports.update(re.findall(r"""(?:from|require\()\s*['"](\.{1,2}/[^'"]+)['"]""", text))


def _looks_binary(head: bytes) -> bool:
    return b"\x00" in head


def scan(root: Path) -> list[FileInfo]:
    """Every source-ish file under `root` with its definitions; never follows symlinks."""
    files: list[FileInfo] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and not (here / d).is_symlink()
            and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink() or Path(name).suffix.lower() in SKIP_EXT:
                continue
            try:
                size = full.stat().st_size
                if size > MAX_FILE_BYTES:
                    continue
                data = full.read_bytes()
            except OSError:
                continue
            if _looks_binary(data[:4096]):
                continue
            info = FileInfo(path=full.relative_to(root).as_posix())
            lang = EXT_LANG.get(full.suffix.lower())
            if lang is not None:
                _parse(info, data, lang)
            files.append(info)
            if len(files) >= MAX_FILES:
                return files
    return files


def _module_candidates(module: str) -> list[str]:
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def score_files(files: list[FileInfo], task: str) -> None:
    """Fill in `score` for every file (see the module docstring for the rules)."""
    idents, words = task_terms(task)
    lowered_task = task.lower()
    for f in files:
        stem = Path(f.path).stem.lower()
        path_words = {
            p for part in f.path.lower().split("/") for p in re.split(r"[^a-z0-9]+", part)
        }
        path_words |= {w for part in f.path.split("/") for w in split_words(part)}
        if f.path.lower() in lowered_task or (
            len(stem) >= 3 and Path(f.path).name.lower() in lowered_task
        ):
            f.score += 10
        f.score += 5 * len(idents & {n.lower() for n in f.names})
        if stem in words or stem in idents:
            f.score += 4
        f.score += 2 * len((words - {stem}) & path_words)
        def_words = {w for n in f.names for w in (n.lower(), *split_words(n))}
        f.score += len(words & def_words)
        if f.score > 0 and _is_test(f.path):
            f.score += 2
    boosted: set[str] = set()
    for f in [f for f in files if f.score > 0]:
        for module in f.imports:
            for target in _resolve_import(f, module, files):
                if target.path not in boosted and target is not f:
                    boosted.add(target.path)
                    target.score += 2


def _resolve_import(src: FileInfo, module: str, files: list[FileInfo]) -> list[FileInfo]:
    if module.startswith("."):  # a JS relative import
        base = os.path.normpath(os.path.join(os.path.dirname(src.path), module))
        wanted = {
            base + ext for ext in ("", ".js", ".ts", ".tsx", ".jsx", "/index.js", "/index.ts")
        }
        return [f for f in files if f.path in wanted]
    cands = _module_candidates(module)
    return [f for f in files if any(f.path == c or f.path.endswith("/" + c) for c in cands)]


def render(files: list[FileInfo], char_budget: int) -> str:
    """Files in rank order with their definitions, as many as fit in `char_budget`."""
    head = "Repository map (most relevant files first; top-level definitions indented):\n"
    out = [head]
    used = len(head)
    reserve = 60  # room for the "more files" note
    shown = 0
    for f in files:
        defs = f.defs[: MAX_TEST_DEFS if _is_test(f.path) else MAX_DEFS_PER_FILE]
        extra = len(f.defs) - len(defs)
        lines = [f"{f.path}\n", *(f"  {d}\n" for d in defs)]
        if extra:
            lines.append(f"  ... {extra} more definitions\n")
        block = "".join(lines)
        if used + len(block) + reserve > char_budget:
            # fall back to as many definitions as fit, then to the bare path
            block = lines[0]
            for line in lines[1:]:
                if used + len(block) + len(line) + reserve > char_budget:
                    break
                block += line
            if used + len(block) + reserve > char_budget:
                break
        out.append(block)
        used += len(block)
        shown += 1
    if shown < len(files):
        out.append(f"[{len(files) - shown} more files not shown]\n")
    text = "".join(out)
    return text[:char_budget]


def build_repo_map(root: Path, task: str, *, token_budget: int = 2000) -> str:
    """A ranked map of `root` for `task`, at most `token_budget` tokens (~4 chars each)."""
    files = scan(root)
    if not files:
        return "Repository map: (no source files found)"
    score_files(files, task)
    files.sort(key=lambda f: (-f.score, f.path.count("/"), f.path))
    return render(files, max(0, token_budget) * CHARS_PER_TOKEN)
