"""One worker process of the multi-process fleet benchmark (`bench fleet --workers K`).

    python -m corral.bench.fleet_worker CONFIG_JSON
    # its last line: {"delays", "firsts", "error", "cpu_user_s", "cpu_sys_s"}

Its attempts' model calls go to the parent's gateway service (`GatewayService`), so
limits and budgets hold across every worker process, as they would in a deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from corral.bench.fleet import FleetParams, Probe, crash_note, worker_settings
from corral.gateway.remote import GatewayService
from corral.orchestrator.heap import tune_for_fleet
from corral.orchestrator.worker import Worker
from corral.store import Store


async def _work(config: dict[str, Any]) -> dict[str, Any]:
    params = FleetParams(**config["params"])
    service = GatewayService(config["public"], config["admin"])
    probe = Probe()
    probe.register(service.model)
    home = Path(config["home"])
    store = await Store.open(params.store_url, home=home)
    error = None
    cpu0 = os.times()
    try:
        settings = worker_settings(params, home, int(config["concurrency"]))
        worker = Worker(store, settings, campaign_id=config["campaign"], on_event=probe.on_event)
        await worker.run(until_done=True)
    except Exception as exc:  # reported to the parent, which says so in its report
        error = crash_note(exc)
    finally:
        cpu1 = os.times()
        await store.close()
        await service.aclose()
    # Our own CPU over the run: the parent's counts of its children would mix it with
    # the sandboxes' (reaped by our launcher) and with our start-up.
    cpu = {"cpu_user_s": cpu1.user - cpu0.user, "cpu_sys_s": cpu1.system - cpu0.system}
    return {"delays": probe.delays, "firsts": probe.firsts, "error": error, **cpu}


if __name__ == "__main__":
    tune_for_fleet()
    print(json.dumps(asyncio.run(_work(json.loads(sys.argv[1])))), flush=True)
