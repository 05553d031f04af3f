"""Where workflows plug into the fleet: how a task's model is built and how a finished
task's result is delivered. The defaults cover plain tasks; `corral.workflows` register
their own (a deterministic playbook "model", a pull request as the delivery).

A workflow can also be registered by name (`register_workflow`): its module is imported,
and its `register()` run, only when one of its model specs or task kinds is first met, so
a CLI command that needs neither does not load it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from corral.ports import Model
    from corral.store import Store, TaskRow

ModelFactory: TypeAlias = "Callable[[str, TaskRow, Mapping[str, str] | None], Model]"
Delivery: TypeAlias = "Callable[[Store, TaskRow, str, str, Path], Awaitable[dict[str, Any]]]"
"""(store, task, attempt_id, diff, home) -> what was delivered; must be idempotent."""

_models: dict[str, ModelFactory] = {}
_deliveries: dict[str, Delivery] = {}
# Registered by name, not loaded yet: model prefix / task kind -> the workflow's module.
_lazy_models: dict[str, str] = {}
_lazy_deliveries: dict[str, str] = {}


def register_workflow(
    module: str, *, model_prefixes: Iterable[str] = (), kinds: Iterable[str] = ()
) -> None:
    """`module`'s `register()` plugs in these model prefixes and task kinds' deliveries;
    it runs when one of them is first needed."""
    for prefix in model_prefixes:
        _lazy_models[prefix] = module
    for kind in kinds:
        _lazy_deliveries[kind] = module


def _load(module: str) -> None:
    # What was registered by hand before the workflow loads (a test double, a site's own
    # PR delivery) keeps winning, as it did when workflows registered eagerly.
    models, deliveries = dict(_models), dict(_deliveries)
    importlib.import_module(module).register()
    _models.update(models)
    _deliveries.update(deliveries)
    for lazy in (_lazy_models, _lazy_deliveries):
        for key in [k for k, m in lazy.items() if m == module]:
            del lazy[key]


def register_model(prefix: str, factory: ModelFactory) -> None:
    """Specs starting with `prefix` (e.g. "playbook:") are built by `factory`."""
    _models[prefix] = factory


def register_delivery(kind: str, delivery: Delivery) -> None:
    """Tasks of this kind deliver through `delivery` instead of writing a patch file."""
    _deliveries[kind] = delivery


def build_model(spec: str, task: TaskRow, env: Mapping[str, str] | None) -> Model:
    for prefix, module in list(_lazy_models.items()):
        if spec.startswith(prefix):
            _load(module)
    for prefix, factory in _models.items():
        if spec.startswith(prefix):
            return factory(spec, task, env)
    from corral.models import parse_model_spec

    return parse_model_spec(spec, env=env)


def check_model(spec: str, env: Mapping[str, str] | None) -> None:
    """Fail before anything runs: a registered prefix, or a spec the model layer accepts."""
    if spec == "route" or is_registered(spec):
        return
    from corral.models import check_model_spec

    check_model_spec(spec, env=env)


def is_registered(spec: str) -> bool:
    return any(spec.startswith(p) for p in (*_models, *_lazy_models))


def delivery_for(kind: str) -> Delivery | None:
    module = _lazy_deliveries.get(kind)
    if module is not None:
        _load(module)
    return _deliveries.get(kind)
