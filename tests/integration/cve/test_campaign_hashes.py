"""Bumps in hash-pinned manifests, end to end and offline: real wheels built here, a local
fake of PyPI's JSON API for the digests, bwrap sandboxes where pip installs the rewritten
files with `--require-hashes`, and the commit on the PR branch."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from corral.domain import ActionTaken, Observed
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.workflows.cve import FixPlan, lockreqs, open_source
from corral.workflows.cve.campaign import CampaignOptions, RepoEntry, triage
from corral.workflows.cve.outcome import run_cve_campaign
from corral.workflows.cve.tasks import CvePayload
from corral.workflows.cve.verify import LOCKREQS, VENV, install_command
from corral.workflows.playbooks import exit_code

from . import fakepypi
from .conftest import SNAPSHOT, FakeServer

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
TEST = (
    "import unittest\n\nimport idna\nimport six\n\n\nclass T(unittest.TestCase):\n"
    "    def test_it(self):\n        self.assertEqual(idna.__version__, '3.7')\n"
)


def _req(d: fakepypi.Dist, *hashes: str) -> str:
    lines = [f"{d.name}=={d.version} \\"]
    hs = hashes or (d.wheel_sha256, d.sdist_sha256)
    lines += [f"    --hash=sha256:{h} \\" for h in hs]
    return "\n".join(lines)[:-2] + "\n"


def _poetry(*ds: fakepypi.Dist) -> str:
    out = []
    for d in ds:
        out.append(
            f'[[package]]\nname = "{d.name}"\nversion = "{d.version}"\ndescription = ""\n'
            'optional = false\npython-versions = "*"\nfiles = [\n'
            f'    {{file = "{d.wheel.name}", hash = "sha256:{d.wheel_sha256}"}},\n'
            f'    {{file = "{d.name}-{d.version}.tar.gz", hash = "sha256:{d.sdist_sha256}"}},\n]\n'
        )
    return "\n".join(out) + '\n[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\n'


def _uv(*ds: fakepypi.Dist) -> str:
    out = ['version = 1\nrequires-python = ">=3.11"\n']
    for d in ds:
        u = {f["packagetype"]: f for f in d.urls()}
        sd, wh = u["sdist"], u["bdist_wheel"]
        out.append(
            f'[[package]]\nname = "{d.name}"\nversion = "{d.version}"\n'
            'source = { registry = "https://pypi.org/simple" }\n'
            f'sdist = {{ url = "{sd["url"]}", hash = "sha256:{d.sdist_sha256}", size = 4321 }}\n'
            f'wheels = [\n    {{ url = "{wh["url"]}", hash = "sha256:{d.wheel_sha256}", '
            "size = 1234 },\n]\n"
        )
    out.append('[[package]]\nname = "svc"\nversion = "0.1.0"\nsource = { editable = "." }\n')
    return "\n".join(out)


def _pipfile(*ds: fakepypi.Dist) -> str:
    default = {
        d.name: {"hashes": sorted(f"sha256:{h}" for h in (d.wheel_sha256, d.sdist_sha256)),
                 "index": "pypi", "version": f"=={d.version}"}
        for d in ds
    }  # fmt: skip
    meta = {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6, "requires": {}, "sources": []}
    doc = {"_meta": meta, "default": default, "develop": {}}
    return json.dumps(doc, indent=4, sort_keys=True) + "\n"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("cve-hashes")
    cache = base / "wheel-cache"
    idna6, idna7 = fakepypi.build(cache, "idna", "3.6"), fakepypi.build(cache, "idna", "3.7")
    six = fakepypi.build(cache, "six", "1.16.0")
    yaml = fakepypi.build(cache, "pyyaml", "5.3.1")
    fakepypi.build(cache, "pyyaml", "5.4")  # on disk, but the index does not answer for it
    fakepypi.build(cache, "httpkit", "1.0", ("idna<3.7,>=2.5",))  # no advisory: not bumped
    repos = {
        "reqs": {"requirements.txt": _req(idna6) + "    # via -r requirements.in\n" + _req(six)},
        "poetry": {"poetry.lock": _poetry(idna6, six)},
        "uv": {"uv.lock": _uv(idna6, six)},
        "pipfile": {"Pipfile.lock": _pipfile(idna6, six)},
        "gap": {"requirements.txt": _req(idna6) + _req(yaml) + _req(six)},
        "badhash": {"requirements.txt": _req(idna6) + _req(six, "f" * 64)},
        "clash": {"requirements.txt": "idna==3.6\nsix==1.16.0\nhttpkit==1.0\n"},
    }
    for name, files in repos.items():
        root = base / name
        root.mkdir()
        for rel, text in {**files, "test_it.py": TEST}.items():
            (root / rel).write_text(text)
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "init")
    index = FakeServer(fakepypi.route([idna6, idna7, six, yaml])).__enter__()
    try:
        result = asyncio.run(_campaign(base, cache, index.url + "/pypi", list(repos)))
    finally:
        index.__exit__()
    result |= {"base": base, "idna7": idna7, "requests": index.requests}
    return result


async def _campaign(base: Path, cache: Path, url: str, names: list[str]) -> dict[str, Any]:
    opts = CampaignOptions(db=(str(SNAPSHOT),), concurrency=2, use_index=False,
                           wheel_cache=cache, index_url=url)  # fmt: skip
    triaged = await triage([RepoEntry(base / n) for n in names], SOURCE(), opts)
    store = await Store.open(None, home=base / "home")
    try:
        settings = WorkerSettings(home=base / "home", concurrency=2, zombie_after_s=300)
        report = await run_cve_campaign(store, triaged, opts, settings)
        installs: dict[str, list[tuple[str, str]]] = {}
        for r in report["repos"]:
            attempts = await store.attempts_of(r["task"])
            events = await store.events(attempts[-1]["id"])
            cmds = {e.call_id: e.args.get("command", "") for e in events
                    if isinstance(e, ActionTaken) and e.tool == "bash"}  # fmt: skip
            installs[r["key"]] = [(cmds[e.call_id], e.output) for e in events
                                  if isinstance(e, Observed) and e.call_id in cmds
                                  and "pip install" in cmds[e.call_id]]  # fmt: skip
    finally:
        await store.close()
    return {"report": report, "installs": installs, "payloads": {t.key: t.payload for t in triaged}}


def SOURCE() -> Any:
    return open_source([str(SNAPSHOT)])


def _repo(run: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in run["report"]["repos"] if r["key"] == key)


def _committed(run: dict[str, Any], key: str, path: str) -> str:
    branch = _repo(run, key)["branch"]
    assert branch, _repo(run, key)
    return _git(run["base"] / key, "show", f"{branch}:{path}")


@pytest.mark.parametrize("key", ["reqs", "poetry", "uv", "pipfile"])
def test_hash_pinned_bumps_verify_with_require_hashes_and_are_committed(
    run: dict[str, Any], key: str
) -> None:
    r = _repo(run, key)
    assert r["status"] == "fixed" and r["tests"] == "passed", r["reason"]
    assert r["fixed"] == [["idna", "PYSEC-2024-60"]]
    command, output = run["installs"][key][-1]
    assert "--require-hashes" in command and output.rstrip().endswith("corral-exit=0"), output
    new = run["idna7"]
    manifest = {"reqs": "requirements.txt", "poetry": "poetry.lock", "uv": "uv.lock",
                "pipfile": "Pipfile.lock"}[key]  # fmt: skip
    text = _committed(run, key, manifest)
    assert new.wheel_sha256 in text and new.sdist_sha256 in text
    old = (run["base"] / key / manifest).read_text()  # the checkout is untouched
    assert "3.6" in old and new.wheel_sha256 not in old
    assert text.count("\n") == old.count("\n")  # the same layout: two files before and after


def test_requirements_keep_the_continuation_layout(run: dict[str, Any]) -> None:
    new = run["idna7"]
    assert _committed(run, "reqs", "requirements.txt").startswith(
        f"idna==3.7 \\\n    --hash=sha256:{min(new.wheel_sha256, new.sdist_sha256)} \\\n"
        f"    --hash=sha256:{max(new.wheel_sha256, new.sdist_sha256)}\n"
        "    # via -r requirements.in\nsix==1.16.0 \\\n"
    )


def test_locks_parse_after_the_rewrite(run: dict[str, Any]) -> None:
    poetry = tomllib.loads(_committed(run, "poetry", "poetry.lock"))["package"][0]
    assert poetry["version"] == "3.7" and len(poetry["files"]) == 2
    uv = tomllib.loads(_committed(run, "uv", "uv.lock"))["package"][0]
    assert uv["sdist"]["url"].endswith("idna-3.7.tar.gz") and uv["wheels"][0]["size"] == 1234
    pipfile = json.loads(_committed(run, "pipfile", "Pipfile.lock"))["default"]["idna"]
    assert pipfile["version"] == "==3.7" and len(pipfile["hashes"]) == 2


def test_hashes_the_index_cannot_give_send_the_repo_to_review(run: dict[str, Any]) -> None:
    r = _repo(run, "gap")
    assert r["status"] == "needs review" and r["pr"] is None and not r["branch"]
    first = r["reason"].splitlines()[0]
    assert first.startswith("Hashes could not be refreshed: pyyaml 5.4:")
    assert "HTTP 404" in first and "requirements.txt:" in first
    payload = run["payloads"]["gap"]
    assert [e.package for e in payload.edits] == ["idna"]  # pyyaml is left alone, not stale
    # The rest still verified in the sandbox: idna's bump, with pyyaml at its old pin.
    command, output = run["installs"]["gap"][-1]
    assert "--require-hashes" in command and output.rstrip().endswith("corral-exit=0"), output
    assert any(p.endswith("pyyaml/5.4/json") for _, p, _ in run["requests"])


def test_pip_really_checks_hashes_in_the_sandbox(run: dict[str, Any]) -> None:
    """A wrong hash the campaign did not write (six's) fails the install: review, no PR."""
    r = _repo(run, "badhash")
    assert r["status"] == "needs review" and r["pr"] is None and not r["branch"]
    assert "installing the upgraded dependencies failed" in r["reason"]
    assert "DO NOT MATCH THE HASHES" in r["reason"]


@pytest.mark.parametrize("stale", [False, True])
def test_the_lock_check_fails_on_a_stale_hash(tmp_path: Path, stale: bool) -> None:
    """The install step alone, in a plain shell: lockreqs + pip --require-hashes bite."""
    cache = tmp_path / "cache"
    idna, six = fakepypi.build(cache, "idna", "3.7"), fakepypi.build(cache, "six", "1.16.0")
    repo = tmp_path / "repo"
    (repo / ".corral" / "wheels").mkdir(parents=True)
    for d in (idna, six):
        shutil.copy(d.wheel, repo / ".corral" / "wheels")
    shutil.copy(lockreqs.__file__, repo / LOCKREQS)
    (repo / ".corral" / "pins.txt").write_text("idna==3.7\nsix==1.16.0\n")
    lock = _poetry(idna, six)
    (repo / "poetry.lock").write_text(lock.replace(idna.wheel_sha256, "e" * 64) if stale else lock)
    payload = CvePayload(repo=str(repo), plan=FixPlan(root=str(repo)),
                         hash_checks=(("poetry.lock", "idna"),))  # fmt: skip
    venv = tmp_path / "venv"
    command = (
        install_command(payload).replace(VENV, str(venv)).replace("/tmp/corral-", f"{tmp_path}/")
    )
    out = subprocess.run(["bash", "-c", command], cwd=repo, capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert exit_code(text) == (1 if stale else 0), text
    assert ("DO NOT MATCH THE HASHES" in text) == stale


def test_a_bump_another_pin_does_not_accept_lands_in_review(run: dict[str, Any]) -> None:
    """Installed with --no-deps, the bump went in and the tests passed, while the user's
    own `pip install -r requirements.txt` would refuse it: it was delivered as fixed."""
    r = _repo(run, "clash")
    assert r["status"] == "needs review" and r["pr"] is None and not r["branch"], r
    assert (
        "the upgrade conflicts with another dependency: httpkit 1.0 requires "
        "idna<3.7,>=2.5, but idna 3.7 is installed"
    ) in r["reason"]
    command, _ = run["installs"]["clash"][-1]  # every pin in the venv, even one the host has
    assert "--no-deps --ignore-installed .corral/wheels/*.whl" in command
