"""Event log throughput: events appended per second on SQLite and on Postgres, one run.

W concurrent writers (agents) each append E `observed` events one at a time, each append
awaiting its commit, as the agent loop does; the group-commit writer shares commits.
Postgres uses a database created for the run and dropped after. Asserts nothing.

    .venv/bin/python bench/store_throughput.py [--writers 200] [--events 50] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.domain import Observed
from corral.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
PG = os.environ.get("CORRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def run(url: str | None, home: Path, writers: int, per_writer: int) -> dict[str, Any]:
    store = await Store.open(url, home=home)
    try:
        ids = [f"att_bench_{os.getpid()}_{w}" for w in range(writers)]
        for a in ids:
            await store.create_attempt(a, task="bench", repo="/r", model="m", sandbox="local")

        async def writer(attempt: str) -> None:
            for seq in range(per_writer):
                await store.append(
                    Observed(
                        attempt_id=attempt,
                        seq=seq,
                        call_id=f"c{seq}",
                        tool="bash",
                        output=f"step {seq} output " * 8,
                        exit_code=0,
                    )
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(a) for a in ids))
        wall = time.perf_counter() - t0
    finally:
        await store.close()
    total = writers * per_writer
    return {
        "events": total,
        "writers": writers,
        "wall_s": round(wall, 3),
        "events_per_s": round(total / wall, 1),
    }


def postgres(writers: int, per_writer: int) -> dict[str, Any]:
    import psycopg

    name = f"corral_store_bench_{os.getpid()}"
    try:
        with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        return {"error": f"no Postgres at {PG}: {str(exc).splitlines()[0]}"}
    try:
        url = PG.rsplit("/", 1)[0] + "/" + name
        return asyncio.run(run(url, Path(tempfile.gettempdir()), writers, per_writer))
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=200)
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="10 writers x 10 events")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    args = ap.parse_args()
    if args.quick:
        args.writers, args.events = 10, 10
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = asyncio.run(run(None, Path(tmp), args.writers, args.events))
    pg = postgres(args.writers, args.events)
    out = {"benchmark": "store_throughput", "sqlite": sqlite, "postgres": pg}
    if "events_per_s" in pg:
        out["postgres_vs_sqlite"] = round(pg["events_per_s"] / sqlite["events_per_s"], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
