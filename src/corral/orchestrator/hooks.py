"""Where workflows plug into the fleet: how a task's model is built and how a finished
task's result is delivered. The defaults cover plain tasks; `corral.workflows` register
their own (a deterministic playbook "model", a pull request as the delivery).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from corral.models import check_model_spec, parse_model_spec
from corral.ports import Model
from corral.store import Store, TaskRow

ModelFactory = Callable[[str, TaskRow, Mapping[str, str] | None], Model]
Delivery = Callable[[Store, TaskRow, str, str, Path], Awaitable[dict[str, Any]]]
"""(store, task, attempt_id, diff, home) -> what was delivered; must be idempotent."""

_models: dict[str, ModelFactory] = {}
_deliveries: dict[str, Delivery] = {}


def register_model(prefix: str, factory: ModelFactory) -> None:
    """Specs starting with `prefix` (e.g. "playbook:") are built by `factory`."""
    _models[prefix] = factory


def register_delivery(kind: str, delivery: Delivery) -> None:
    """Tasks of this kind deliver through `delivery` instead of writing a patch file."""
    _deliveries[kind] = delivery


def build_model(spec: str, task: TaskRow, env: Mapping[str, str] | None) -> Model:
    for prefix, factory in _models.items():
        if spec.startswith(prefix):
            return factory(spec, task, env)
    return parse_model_spec(spec, env=env)


def check_model(spec: str, env: Mapping[str, str] | None) -> None:
    """Fail before anything runs: a registered prefix, or a spec the model layer accepts."""
    if spec == "route" or is_registered(spec):
        return
    check_model_spec(spec, env=env)


def is_registered(spec: str) -> bool:
    return any(spec.startswith(p) for p in _models)


def delivery_for(kind: str) -> Delivery | None:
    return _deliveries.get(kind)
