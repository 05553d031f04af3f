"""A refactor from its file to delivered patches: plan, campaign, agents in bwrap, tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import CORRAL, Cli
from tests.trees import write_tree

from corral.testing.fake_github import FakeGitHub


def _repo(root: Path) -> Path:
    files = {
        "shop/__init__.py": "",
        "shop/money.py": "def cents(x):\n    return round(x * 100)\n",
        "shop/cart.py": "from shop.money import cents\n\ndef total(xs):\n"
                        "    return sum(cents(x) for x in xs)\n",
        "tests/test_shop.py": "import unittest\nfrom shop.cart import total\n\n"
                              "class T(unittest.TestCase):\n    def test_total(self):\n"
                              "        self.assertEquals(total([1.5, 2]), 350)\n",
        "tests/test_money.py": "import unittest\nfrom shop.money import cents\n\n"
                               "class T(unittest.TestCase):\n    def test_cents(self):\n"
                               "        self.assertEquals(cents(0.1), 10)\n"
                               "        self.assertEquals(cents(2), 200)\n",
        "tests/__init__.py": "",
    }  # fmt: skip
    _committed(root, files)
    return root


def _committed(root: Path, files: dict[str, str]) -> list[str]:
    """A git repo holding `files` in one commit; the git command line to work on it."""
    write_tree(root, files)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    return git


def test_a_mechanical_refactor_runs_as_a_campaign(cli: Cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    spec = tmp_path / "refactor.yaml"
    spec.write_text(
        "name: assert-equal\ngoal: Use assertEqual, not the deprecated assertEquals.\n"
        "find: '\\bassertEquals\\('\nreplace: 'assertEqual('\npaths: ['tests/**']\n"
        "test: python3 -m unittest -q\nmax_files: 1\n"
    )
    campaign = tmp_path / "campaign.yaml"
    plan = subprocess.run(
        [CORRAL, "refactor", "plan", str(spec), "--repo", str(repo), "--campaign", str(campaign),
         "--home", str(cli.home)],
        capture_output=True, text=True, timeout=60, env=cli.env,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "3 sites in 2 files" in plan.stdout

    code, out = cli.json("campaign", "run", str(campaign), timeout=300)
    assert code == 0, (out, cli("tasks", "ls", "--json").stdout)
    assert out["counts"] == {"succeeded": 2}
    patches = {
        t["key"]: (cli.home / "results" / out["id"] / f"{t['key']}.patch").read_text()
        for t in out["tasks"]
    }
    assert sum(p.count("+        self.assertEqual(") for p in patches.values()) == 3
    for key, patch in patches.items():
        assert patch.count("diff --git") == 1, key  # each part changed its own file only
        assert "assertEquals" not in "".join(
            line for line in patch.splitlines(keepends=True) if line.startswith("+")
        )
    assert "assertEquals" in (repo / "tests" / "test_shop.py").read_text()  # repo untouched


def test_a_refactor_the_playbook_cannot_do_goes_to_review(cli: Cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    spec = tmp_path / "refactor.yaml"
    spec.write_text(  # no `replace`, and the playbook named anyway: it must not pretend
        "name: words\ngoal: Rename cents to to_cents everywhere.\nfind: '\\bcents\\b'\n"
    )
    campaign = tmp_path / "campaign.yaml"
    subprocess.run(
        [CORRAL, "refactor", "plan", str(spec), "--repo", str(repo), "--campaign", str(campaign),
         "--model", "playbook:refactor", "--home", str(cli.home)],
        check=True, capture_output=True, timeout=60, env=cli.env,
    )  # fmt: skip
    code, out = cli.json("campaign", "run", str(campaign), timeout=300)
    assert code != 0
    # What depends on a part under review waits for the reviewer.
    assert set(out["counts"]) <= {"needs_review", "pending"} and out["counts"]["needs_review"]
    assert "succeeded" not in out["counts"]


def _stacked(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """cart and two test files call money.cents; the shop test imports cart."""
    repo = tmp_path / "stacked"
    files = {
        "shop/__init__.py": "",
        "shop/money.py": "def to_cents(x):\n    return round(x * 100)\n\n\n"
                         "def cents(x):  # deprecated\n    return to_cents(x)\n",
        "shop/cart.py": "from shop import money\n\n\ndef total(xs):\n"
                        "    return sum(money.cents(x) for x in xs)\n",
        "tests/__init__.py": "",
        "tests/test_shop.py": "import unittest\nfrom shop import money\nfrom shop.cart import total\n\n"
                              "class T(unittest.TestCase):\n    def test_total(self):\n"
                              "        self.assertEqual(total([1.5, 2]), money.cents(3.5))\n",
        "tests/test_money.py": "import unittest\nfrom shop import money\n\n"
                               "class T(unittest.TestCase):\n    def test_cents(self):\n"
                               "        self.assertEqual(money.cents(0.1), 10)\n",
    }  # fmt: skip
    git = _committed(repo, files)
    spec = tmp_path / "refactor.yaml"
    spec.write_text(
        "name: to-cents\ngoal: Call money.to_cents, not the deprecated money.cents.\n"
        "find: '\\bmoney\\.cents\\('\nreplace: 'money.to_cents('\n"
        "test: python3 -m unittest -q\nmax_files: 1\n"
    )
    return repo, spec, git


def test_parts_start_from_their_parents_results_and_stack_as_branches(
    cli: Cli, tmp_path: Path
) -> None:
    repo, spec, git = _stacked(tmp_path)
    campaign = tmp_path / "campaign.yaml"
    plan = subprocess.run(
        [CORRAL, "refactor", "plan", str(spec), "--repo", str(repo), "--campaign", str(campaign),
         "--home", str(cli.home), "--json"],
        capture_output=True, text=True, timeout=60, env=cli.env,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    parts = {f["path"]: s for s in json.loads(plan.stdout)["subtasks"] for f in s["files"]}
    cart, shop_test = parts["shop/cart.py"], parts["tests/test_shop.py"]
    assert shop_test["depends_on"] == [cart["id"]]

    code, out = cli.json("campaign", "run", str(campaign), timeout=300)
    assert code == 0, out
    assert out["counts"] == {"succeeded": 3}

    def show(ref: str, path: str) -> str:
        return subprocess.run([*git, "show", f"{ref}:{path}"], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    branch = "corral/refactor/to-cents"
    # The test part started from the cart part's result: its branch sits on that one.
    parent = subprocess.run([*git, "rev-parse", f"{branch}/{shop_test['id']}^"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    cart_tip = subprocess.run([*git, "rev-parse", f"{branch}/{cart['id']}"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert parent == cart_tip
    shop_patch = (cli.home / "results" / out["id"] / f"{shop_test['id']}.patch").read_text()
    assert "shop/cart.py" not in shop_patch  # its parent's change was its starting point
    # Every part, merged, on one branch; the user's checkout untouched.
    for path in ("shop/cart.py", "tests/test_shop.py", "tests/test_money.py"):
        merged = show(f"{branch}/all", path)
        assert "money.to_cents(" in merged and "money.cents(" not in merged
    assert "money.cents(" in (repo / "shop" / "cart.py").read_text()


def _llm_case(cli: Cli, tmp_path: Path, extra_edit: bool) -> tuple[int, dict[str, object]]:
    """A refactor with no `replace`: the playbook hands it to a (scripted) LLM."""
    repo = _repo(tmp_path / "repo")
    turns = [
        {"tool_calls": [{"tool": "editor", "args": {
            "command": "str_replace", "path": "shop/money.py",
            "old": "def cents(x):", "new": "def to_cents(x):"}}]},
    ]  # fmt: skip
    if extra_edit:  # a change outside the part: the check must catch it
        turns.append({"tool_calls": [{"tool": "editor", "args": {
            "command": "create", "path": "NOTES.md", "content": "renamed\n"}}]})  # fmt: skip
    turns.append({"tool_calls": [{"tool": "finish", "args": {"message": "renamed"}}]})
    script = tmp_path / "llm.json"
    script.write_text(json.dumps(turns))
    spec = tmp_path / "refactor.yaml"
    spec.write_text(
        "name: rename\ngoal: Rename the function cents to to_cents where it is defined.\n"
        "find: '^def cents\\('\npaths: ['shop/**']\n"
    )
    campaign = tmp_path / "campaign.yaml"
    subprocess.run(
        [CORRAL, "refactor", "plan", str(spec), "--repo", str(repo), "--campaign", str(campaign),
         "--model", f"playbook:refactor?then=scripted:{script}", "--home", str(cli.home)],
        check=True, capture_output=True, timeout=60, env=cli.env,
    )  # fmt: skip
    return cli.json("campaign", "run", str(campaign), timeout=300)


def test_an_llms_part_is_checked_after_it_says_finish(cli: Cli, tmp_path: Path) -> None:
    code, out = _llm_case(cli, tmp_path, extra_edit=False)
    assert code == 0 and out["counts"] == {"succeeded": 1}, out


def test_an_llm_that_changes_other_files_goes_to_review(cli: Cli, tmp_path: Path) -> None:
    code, out = _llm_case(cli, tmp_path, extra_edit=True)
    assert code != 0 and out["counts"] == {"needs_review": 1}, out
    reviews = json.loads(cli("review", "list", "--json").stdout)
    assert "the change touches files outside this part: NOTES.md" in json.dumps(reviews)


def test_each_part_gets_a_pull_request_stacked_on_its_parents(cli: Cli, tmp_path: Path) -> None:
    repo, spec, git = _stacked(tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run([*git, "remote", "add", "origin", str(remote)], check=True)
    subprocess.run([*git, "branch", "-M", "main"], check=True)
    campaign = tmp_path / "campaign.yaml"
    plan = subprocess.run(
        [CORRAL, "refactor", "plan", str(spec), "--repo", str(repo), "--campaign", str(campaign),
         "--home", str(cli.home), "--json"],
        capture_output=True, text=True, timeout=60, env=cli.env, check=True,
    )  # fmt: skip
    parts = {f["path"]: s["id"] for s in json.loads(plan.stdout)["subtasks"] for f in s["files"]}
    with FakeGitHub(token="tok") as gh:
        forge = {"GITHUB_TOKEN": "tok", "CORRAL_GITHUB_API": gh.url,
                 "CORRAL_GITHUB_REPO": "acme/shop"}  # fmt: skip
        code, out = cli.json("campaign", "run", str(campaign), timeout=300, extra_env=forge)
    assert code == 0 and out["counts"] == {"succeeded": 3}, out
    pulls = {p["head"]["ref"]: p for p in gh.open_pulls("acme/shop")}
    branch = "corral/refactor/to-cents"
    cart, shop, money = (parts[p] for p in ("shop/cart.py", "tests/test_shop.py",
                                              "tests/test_money.py"))  # fmt: skip
    assert set(pulls) == {f"{branch}/{cart}", f"{branch}/{shop}", f"{branch}/{money}"}
    assert pulls[f"{branch}/{cart}"]["base"]["ref"] == "main"
    assert pulls[f"{branch}/{shop}"]["base"]["ref"] == f"{branch}/{cart}"  # stacked
    assert f"Stacked on {cart}" in pulls[f"{branch}/{shop}"]["body"]
    assert "corral-refactor" not in pulls[f"{branch}/{shop}"]["body"]  # prose, not the JSON
    pushed = subprocess.run(["git", "-C", str(remote), "branch", "--list", f"{branch}/*"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert len(pushed.split()) == 3


def test_the_refactor_demo_runs_a_stack_of_parts(cli: Cli) -> None:
    code, out = cli.json("refactor", "demo", timeout=300)
    assert code == 0, out
    assert out["counts"] == {"succeeded": 4}
    assert len(out["branches"]) == 5 and "corral/refactor/to-cents/all" in out["branches"]
    log = subprocess.run(
        ["git", "-C", str(out["repo"]), "log", "--format=%s", "corral/refactor/to-cents/all"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert log[-1] == "the shop, before" and len(log) == 5  # one commit per part, stacked
