"""Shared test settings: where the real services are."""

from __future__ import annotations

import os

# Real PostgreSQL on this machine (trust auth, database `test`); override for other setups.
POSTGRES_URL = os.environ.get("CORRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
