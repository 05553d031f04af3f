"""The CLI starts light: importing it (and `corral --help`) loads no heavy module; what
importing it used to do on the side is done before a command runs."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from corral.cli.audit import KINDS
from corral.cli.fleet import FLEET_MODULES
from corral.store.audit import KINDS as STORE_KINDS

# What made `corral --help` take a second: each is imported by the commands that need it.
HEAVY = (
    "sqlalchemy",
    "httpx",
    "litellm",
    "pydantic",
    "prometheus_client",
    "yaml",
    "corral.agent",
    "corral.domain",
    "corral.gateway",
    "corral.models",
    "corral.orchestrator",
    "corral.sandbox",
    "corral.store",
    "corral.workflows",
)

LOADED = f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def test_importing_the_cli_loads_no_heavy_module(fresh_python: Callable[[str], str]) -> None:
    out = fresh_python(f"import corral.cli.main; {LOADED}")
    assert out.strip() == "[]"


# A command's help runs its callback, which installs log redaction and names the
# workflows' hooks: that used to load the orchestrator, the store and both workflows
# (~0.5 s a command).
COMMAND_HEAVY = ("sqlalchemy", "httpx", "litellm", "corral.store", "corral.workflows",
                 "corral.gateway", "corral.sandbox", "corral.orchestrator.run")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "heavy", "shown"),
    [(["--help"], HEAVY, "CAMPAIGN"), (["events", "--help"], COMMAND_HEAVY, "ATTEMPT")],
)
def test_help_loads_no_heavy_module(
    fresh_python: Callable[[str], str], args: list[str], heavy: tuple[str, ...], shown: str
) -> None:
    out = fresh_python(
        "import sys; from typer.testing import CliRunner; from corral.cli.main import app; "
        f"r = CliRunner().invoke(app, {args!r}); "
        f"assert r.exit_code == 0 and {shown!r} in r.output.upper(), r.output; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_the_workflows_hooks_named_by_the_cli_are_the_ones_they_register(
    fresh_python: Callable[[str], str],
) -> None:
    """The CLI names each workflow's model prefix and task kind without importing it;
    loading the workflow on first use must register exactly those."""
    out = fresh_python(
        "import sys; from corral.cli.cve import register_hooks as cve; "
        "from corral.cli.refactor import register_hooks as refactor; "
        "from corral.orchestrator import hooks; cve(); refactor(); "
        "named = (sorted(hooks._lazy_models), sorted(hooks._lazy_deliveries)); "
        "loaded = [m for m in sys.modules if m.startswith('corral.workflows')]; "
        "d = hooks.delivery_for('cve'), hooks.delivery_for('refactor'); "
        "from corral.workflows.cve.deliver import deliver_pr; "
        "from corral.workflows.refactor.deliver import deliver; "
        "assert d == (deliver_pr, deliver), d; "
        "print(named, loaded, sorted(hooks._models), sorted(hooks._deliveries), "
        "hooks._lazy_models, hooks._lazy_deliveries)"
    )
    assert out.strip() == (
        "(['playbook:cve', 'playbook:refactor'], ['cve', 'refactor']) [] "
        "['playbook:cve', 'playbook:refactor'] ['cve', 'refactor'] {} {}"
    )


def test_the_policy_packages_lazy_names_all_resolve() -> None:
    import corral.orchestrator as orchestrator
    import corral.orchestrator.policy as policy

    assert sorted(policy.__all__) == sorted(policy._MODULE)
    for package in (policy, orchestrator):
        for name in package.__all__:
            assert getattr(package, name).__name__ == name


def test_a_command_first_installs_log_redaction_and_the_workflows_hooks(
    fresh_python: Callable[[str], str],
) -> None:
    secret = "s3cr3t-" + "q7" * 12
    out = fresh_python(
        "import logging; from typer.testing import CliRunner; from corral.cli.main import app; "
        "from corral.orchestrator.hooks import delivery_for, is_registered; "
        "from corral.orchestrator.policy import register_secret; "
        f"register_secret({secret!r}); "
        "hooks = lambda: (is_registered('playbook:cve'), delivery_for('cve') is not None, "
        "is_registered('playbook:refactor'), delivery_for('refactor') is not None); "
        "before = hooks(); "
        # exits 2 on the bad --kind, before it opens a store: only the callback ran
        "r = CliRunner().invoke(app, ['audit', 'export', '--kind', 'nope']); "
        "assert r.exit_code == 2, r.output; "
        "after = hooks(); "
        "rec = logging.getLogger('t').makeRecord('t', logging.INFO, 'f', 1, 'k=%s', "
        f"({secret!r},), None); "
        "print(before, after, 'REDACTED' in rec.getMessage())"
    )
    assert out.strip() == "(False, False, False, False) (True, True, True, True) True"
    assert secret not in out


def test_the_audit_kinds_in_the_help_are_the_stores() -> None:
    assert KINDS == STORE_KINDS


def test_the_fleet_modules_loaded_before_tuning_exist() -> None:
    assert all(importlib.util.find_spec(name) is not None for name in FLEET_MODULES)


def test_a_hook_registered_by_hand_still_wins_over_a_lazy_workflow(
    fresh_python: Callable[[str], str],
) -> None:
    """Registered after the CLI named the workflows, it was replaced when the workflow
    loaded on first use."""
    out = fresh_python(
        "from corral.cli.cve import register_hooks; from corral.orchestrator import hooks; "
        "register_hooks(); mine = lambda *a: None; hooks.register_delivery('cve', mine); "
        "factory = lambda *a: 'mine'; hooks.register_model('playbook:cve', factory); "
        "print(hooks.delivery_for('cve') is mine, "
        "hooks.build_model('playbook:cve', None, None) == 'mine')"
    )
    assert out.strip() == "True True"
