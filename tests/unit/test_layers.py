"""The layer rules of DESIGN.md, enforced: each package imports only what it may."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "corral"

BASE = {"domain"}
ALLOWED: dict[str, set[str]] = {
    "domain": BASE,
    "ports": BASE | {"ports"},
    "models": BASE | {"ports", "models"},
    "gateway": BASE | {"ports", "models", "gateway"},
    "sandbox": BASE | {"ports", "sandbox"},
    "tools": BASE | {"ports", "tools"},
    "agent": BASE | {"ports", "tools", "agent"},
    "store": BASE | {"ports", "store"},
    # The fakes serve on the gateway's small HTTP server (one server, two users).
    "testing": BASE | {"ports", "models", "gateway", "testing"},
}
ABOVE = set().union(*ALLOWED.values()) - {"testing"}
ALLOWED["orchestrator"] = ABOVE | {"orchestrator"}
ALLOWED["workflows"] = ABOVE | {"orchestrator", "workflows"}
# Benchmarks drive the whole stack against the shipped fakes (the fake provider).
ALLOWED["bench"] = ABOVE | {"orchestrator", "testing", "bench"}
EVERYTHING = None  # api and cli may import anything


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _corral_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            parts = n.split(".")
            if parts[0] == "corral" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


SOURCES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.name == "ports.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_layers(path: Path) -> None:
    layer = _layer(path)
    if layer in {"api", "cli", "examples"}:
        return
    assert layer in ALLOWED, f"{layer} is not a known layer; add it to DESIGN.md and this test"
    bad = [(line, target) for line, target in _corral_imports(path) if target not in ALLOWED[layer]]
    assert not bad, f"{path.relative_to(SRC)} imports {bad} but {layer} may import {ALLOWED[layer]}"


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from corral.orchestrator import run_task\nimport corral.sandbox.bwrap\n")
    assert [t for _, t in _corral_imports(bad)] == ["orchestrator", "sandbox"]
