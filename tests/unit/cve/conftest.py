"""Shared fixtures: the real PyPA advisory snapshot (read in place, never copied in)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.trees import write_tree

from corral.workflows.cve import OsvDatabase

SNAPSHOT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "pypa-advisory-db"


@pytest.fixture(scope="session")
def snapshot() -> Path:
    if not SNAPSHOT.is_dir():
        pytest.fail(f"advisory snapshot missing at {SNAPSHOT}")
    return SNAPSHOT


@pytest.fixture(scope="session")
def db(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> OsvDatabase:
    # A private cache dir: never read a parse cache another run left in ~/.cache.
    return OsvDatabase.open(snapshot, cache_dir=tmp_path_factory.mktemp("osv-cache"))


write = write_tree  # the cve tests' name for it
