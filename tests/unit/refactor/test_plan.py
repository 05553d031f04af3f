"""The refactor planner: sites, import order, packing, the campaign it writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.trees import write_tree as write

from corral.domain import ConfigError
from corral.orchestrator.campaign_file import load_campaign
from corral.workflows.refactor import RefactorSpec, load_spec, make_plan
from corral.workflows.refactor.campaign import campaign_data, campaign_yaml
from corral.workflows.refactor.imports import import_graph, module_names
from corral.workflows.refactor.sites import find_sites, glob_regex


def spec(**over: object) -> RefactorSpec:
    base: dict[str, object] = {"name": "old-call", "goal": "Use new_call.", "find": r"\bold_call\("}
    return RefactorSpec.model_validate(base | over)


def by_file(plan: object) -> dict[str, str]:
    return {f.path: s.id for s in plan.subtasks for f in s.files}  # type: ignore[attr-defined]


# --- the refactor file ---------------------------------------------------------------


def test_spec_file_loads_and_bad_ones_name_file_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "r.yaml"
    good.write_text("name: x\ngoal: do it\nfind: 'a\\('\nreplace: 'b('\nmax_files: 3\n")
    loaded = load_spec(good)
    assert loaded.max_files == 3 and loaded.pattern.search("a(1)")

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngoal: do it\nfind: 'a('\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: find: not a valid regex"):
        load_spec(bad)
    bad.write_text("name: x\ngoal: do it\nfind: 'a(b)'\nreplace: '\\2'\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: replace: does not fit `find`"):
        load_spec(bad)
    bad.write_text("name: x\nfind: a\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:1: goal: Field required"):
        load_spec(bad)
    bad.write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")


def test_globs_cross_dirs_only_with_double_star() -> None:
    py = glob_regex("**/*.py")
    assert py.match("a.py") and py.match("x/y/a.py") and not py.match("a.pyc")
    src = glob_regex("src/*.py")
    assert src.match("src/a.py") and not src.match("src/a/b.py")


# --- sites ---------------------------------------------------------------------------


def test_sites_one_per_line_binary_skipped_and_only_git_tracked(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "a.py": "x = 1\nold_call(1); old_call(2)\n\n\nold_call(3)\n",
        "b.txt": "nothing here\n",
        "vendor/c.py": "old_call()\n",
    })  # fmt: skip
    (repo / "blob.dat").write_bytes(b"\0old_call(")
    found = find_sites(repo, spec(exclude=["vendor/**"]))
    assert [(f.path, [s.line for s in f.sites]) for f in found.files] == [("a.py", [2, 5])]
    assert found.files[0].sites[0].text == "old_call(1); old_call(2)"

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "a.py", "vendor/c.py"], check=True)
    (repo / "untracked.py").write_text("old_call()\n")
    found = find_sites(repo, spec())
    assert [f.path for f in found.files] == ["a.py", "vendor/c.py"]  # untracked: not ours


# --- imports -------------------------------------------------------------------------


def test_module_names_follow_packages_and_imports_resolve(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "src/pkg/__init__.py": "",
        "src/pkg/core.py": "import json\n",
        "src/pkg/sub/__init__.py": "from .. import core\n",
        "src/pkg/sub/util.py": "from ..core import thing\nfrom . import helpers\n",
        "src/pkg/sub/helpers.py": "import pkg.core\n",
        "tool.py": "from pkg.sub import util\n",
    })  # fmt: skip
    paths = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.py"))
    names = module_names(paths, repo)
    assert names["pkg.sub.util"] == "src/pkg/sub/util.py"
    assert names["pkg"] == "src/pkg/__init__.py"
    graph = import_graph(repo, paths)
    assert graph["src/pkg/sub/util.py"] == {"src/pkg/core.py", "src/pkg/sub/helpers.py"}
    assert graph["src/pkg/sub/__init__.py"] == {"src/pkg/core.py"}
    assert graph["src/pkg/sub/helpers.py"] == {"src/pkg/core.py"}
    assert graph["tool.py"] == {"src/pkg/sub/util.py"}
    assert graph["src/pkg/core.py"] == set()  # the standard library is no edge


def test_js_and_ts_relative_imports_are_edges_packages_are_not(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "web/app.ts": 'import { api } from "./lib/api";\nimport React from "react";\n'
                      'export * from "../web/lib";\nconst d = require("./data.js");\n',
        "web/lib/api.ts": "export const api = 1;\n",
        "web/lib/index.ts": "export {};\n",
        "web/data.ts": "module.exports = {};\n",  # TypeScript names its own .ts as .js
    })  # fmt: skip
    paths = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.ts"))
    assert import_graph(repo, paths)["web/app.ts"] == {
        "web/lib/api.ts",
        "web/lib/index.ts",
        "web/data.ts",
    }


# --- the plan ------------------------------------------------------------------------


def test_dependencies_first_through_files_without_sites(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "app/__init__.py": "",
        "app/base.py": "def old_call(): ...\n",
        "app/middle.py": "from app import base\n",  # no site: still carries the order
        "app/top.py": "from app import middle\nold_call()\n",
        "app/leaf.py": "old_call()\n",
        "lib/other.py": "import app.top\nold_call()\n",
    })  # fmt: skip
    plan = make_plan(repo, spec(max_files=1))
    where = by_file(plan)
    subs = {s.id: s for s in plan.subtasks}
    base, top, other = where["app/base.py"], where["app/top.py"], where["lib/other.py"]
    assert subs[base].level == 0 and subs[where["app/leaf.py"]].level == 0
    assert subs[top].depends_on == (base,) and subs[top].level == 1
    assert subs[other].depends_on == (top,)  # base comes through top: not repeated
    ids = [s.id for s in plan.subtasks]
    assert ids.index(base) < ids.index(top) < ids.index(other)
    assert make_plan(repo, spec(max_files=1)) == plan  # the same input, the same plan

    flat = make_plan(repo, spec(max_files=1, order="none"))
    assert all(s.level == 0 and not s.depends_on for s in flat.subtasks)


def test_an_import_cycle_changes_together_even_past_the_limits(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "a.py": "import b\nold_call()\n",
        "b.py": "import c\nold_call()\n",
        "c.py": "import a\nold_call()\n",
        "d.py": "import a\nold_call()\n",
    })  # fmt: skip
    plan = make_plan(repo, spec(max_files=2))
    where = by_file(plan)
    assert where["a.py"] == where["b.py"] == where["c.py"] != where["d.py"]
    cycle = next(s for s in plan.subtasks if s.id == where["a.py"])
    assert "import cycle of 3 files" in cycle.note
    assert next(s for s in plan.subtasks if s.id == where["d.py"]).depends_on == (cycle.id,)


def test_packing_respects_files_sites_and_directories(tmp_path: Path) -> None:
    files = {f"pkg{d}/m{i}.py": "old_call()\n" * (i + 1) for d in range(2) for i in range(4)}
    files["pkg0/big.py"] = "old_call()\n" * 30
    repo = write(tmp_path / "r", files)
    plan = make_plan(repo, spec(max_files=3, max_sites=6, order="none"))
    for sub in plan.subtasks:
        assert len(sub.files) <= 3
        assert sub.sites <= 6 or sub.note == "one file with 30 sites"
        assert len({Path(f.path).parent for f in sub.files}) == 1  # siblings fill one dir first
    assert sorted(by_file(plan)) == sorted(files)  # every file in exactly one subtask
    assert plan.sites == sum(t.count("old_call") for t in files.values())


def test_the_campaign_file_runs_as_written(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "base.py": "old_call()\n",
        "user.py": "import base\nold_call(1)\n",
    })  # fmt: skip
    plan = make_plan(repo, spec(replace="new_call(", test="python -m pytest -q"))
    out = tmp_path / "campaign.yaml"
    out.write_text(campaign_yaml(campaign_data(plan, model="scripted:s.yaml")))
    campaign, _text = load_campaign(out)
    tasks = {t.id: t for t in campaign.tasks}
    assert len(tasks) == 2
    user = tasks[by_file(plan)["user.py"]]
    assert user.depends_on == (by_file(plan)["base.py"],)
    assert "- user.py\n    2: old_call(1)" in user.instructions
    assert "replace each match with `new_call(`" in user.instructions
    assert "python -m pytest -q" in user.instructions
    assert Path(user.repo) == repo.resolve()
    assert "instructions: |" in out.read_text()  # block text: the file reads like the task


# --- what the review found ------------------------------------------------------------


def test_host_git_runs_nothing_a_planned_repo_configures(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    repo = write(tmp_path / "r", {
        "a.py": "old_call()\n",
        ".gitconfig": f'[core]\n\tfsmonitor = "touch {marker}; echo"\n',
    })  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    with open(repo / ".git" / "config", "a") as f:
        f.write(f'[core]\n\tfsmonitor = "touch {marker}; echo"\n')
    found = find_sites(repo, spec())
    assert [f.path for f in found.files] == ["a.py"]
    assert not marker.exists()


def test_a_subdirectory_of_a_git_repo_is_refused(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"pkg/a.py": "old_call()\n"})
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with pytest.raises(ConfigError, match=r"is inside the git repository .*: give its root"):
        make_plan(repo / "pkg", spec())


def test_regexes_and_names_that_would_break_later_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match="matches an empty string"):
        spec(find="o*")
    with pytest.raises(ValueError, match="bad escape"):
        spec(replace="x\\q")
    with pytest.raises(ValueError, match="name"):
        spec(name="a..b")


def test_ids_are_git_branch_name_parts(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"x.lock": "old_call()\n", "lib/foo.lock/a.py": "old_call()\n"})
    ids = [s.id for s in make_plan(repo, spec(max_files=1)).subtasks]
    assert ids and all("." not in i and not i.endswith("-") for i in ids), ids


def test_js_imports_of_data_files_and_odd_python_imports_are_no_edges(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {
        "web/app.js": 'import "./style.css";\nimport d from "./data.json";\nold_call();\n',
        "web/style.css": "a {}\n",
        "web/data.json": "{}\n",
        "pkg/__init__.py": "",
        "pkg/mod.py": "from .. import zz\nold_call()\n",  # beyond the top package
        "zz.py": "old_call()\n",
        "a/tests/helpers.py": "old_call()\n",
        "b/tests/helpers.py": "old_call()\n",
        "b/tests/test_x.py": "import helpers\nold_call()\n",  # its own dir's helpers
        "src/ns/lib/core.py": "old_call()\n",  # a namespace package
        "src/ns/app.py": "from ns.lib import core\nold_call()\n",
        # relative imports in a namespace package: by the files' places
        "src/ns/lib/util.py": "from . import core\nfrom .core import old_call\nold_call()\n",
        "src/ns/lib/deep/x.py": "from ..util import f\nfrom .. import core, nothing\nold_call()\n",
        "src/ns/top.py": "from ... import zz\nfrom .lib.deep import x\nold_call()\n",
        "src/ns/far.py": "from .... import zz\nold_call()\n",  # above the repo
        # a regular package in a namespace one: `..` is the namespace package
        "src/ns/pkg/__init__.py": "",
        "src/ns/pkg/mod.py": "from .. import top\nfrom ..lib.util import f\nold_call()\n",
    })  # fmt: skip
    paths = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    graph = import_graph(repo, paths)
    assert graph["web/app.js"] == set()
    assert graph["pkg/mod.py"] == set()
    assert graph["b/tests/test_x.py"] == {"b/tests/helpers.py"}
    assert graph["src/ns/app.py"] == {"src/ns/lib/core.py"}
    assert graph["src/ns/lib/util.py"] == {"src/ns/lib/core.py"}
    assert graph["src/ns/lib/deep/x.py"] == {"src/ns/lib/util.py", "src/ns/lib/core.py"}
    assert graph["src/ns/top.py"] == {"src/ns/lib/deep/x.py"}  # not the repo's root
    assert graph["src/ns/far.py"] == set()
    assert graph["src/ns/pkg/mod.py"] == {"src/ns/top.py", "src/ns/lib/util.py"}
    assert make_plan(repo, spec()).files == 13  # and planning it does not crash
