"""The repository map: ranking by the task, budget, tolerance of bad files, skipped dirs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from corral.agent import repomap
from corral.agent.repomap import build_repo_map, split_words

TASK = "Cart.total() ignores the discount set by apply_discount; make the total correct."


def put(root: Path, rel: str, text: str | bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    put(root, "README.md", "# Shop\n")
    put(root, "src/shop/__init__.py", "")
    put(
        root,
        "src/shop/cart.py",
        "from shop.inventory import Inventory\n\n"
        "class Cart:\n    def add_item(self, sku, qty=1): ...\n    def total(self): ...\n\n"
        "def apply_discount(cart, percent, *, reason=None):\n    return cart\n",
    )
    put(root, "src/shop/inventory.py", "class Inventory:\n    def stock(self, sku): ...\n")
    put(root, "src/shop/utils.py", "def slugify(text):\n    return text\n")
    put(root, "src/shop/zz_orders.py", "class Order:\n    def ship(self): ...\n")
    put(
        root,
        "tests/test_cart.py",
        "from shop.cart import Cart\n\ndef test_total_with_discount():\n    assert Cart()\n",
    )
    put(root, "src/shop/broken.py", "def fine_before():\n    pass\n\ndef oops(:\n    pass\n")
    put(root, "web/app.js", "export function renderCart(cart) {\n}\nclass CartView {}\n")
    put(root, "srv/server.go", "package srv\n\nfunc (s *Server) HandleCart(w int) {\n}\n")
    put(root, "scripts/build.sh", "deploy_cart() {\n  echo hi\n}\n")
    put(root, ".git/cart_total_apply_discount.py", "def apply_discount(): pass\n")
    put(root, "node_modules/cart/index.js", "function apply_discount() {}\n")
    put(root, ".venv/lib/cart.py", "def apply_discount(): pass\n")
    put(root, "assets/cart.png", b"\x89PNG\r\n\x1a\n\x00\x00cart")
    outside = tmp_path / "outside"
    put(outside, "cart_secret.py", "def apply_discount(): pass\n")
    os.symlink(outside, root / "linked_dir")
    os.symlink(outside / "cart_secret.py", root / "linked_cart.py")
    return root


def file_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines()[1:] if ln and not ln.startswith((" ", "["))]


def test_relevant_file_ranks_first_with_its_definitions(repo: Path) -> None:
    text = build_repo_map(repo, TASK)
    files = file_lines(text)
    assert files[0] == "src/shop/cart.py"
    assert "  class Cart: add_item, total" in text
    assert "  def apply_discount(cart, percent, reason)" in text
    assert files.index("tests/test_cart.py") < files.index("src/shop/utils.py")


def test_imported_file_gets_a_boost(repo: Path) -> None:
    files = file_lines(build_repo_map(repo, TASK))
    # inventory.py shares no word with the task; cart.py imports it
    assert files.index("src/shop/inventory.py") < files.index("src/shop/utils.py")
    assert files.index("src/shop/inventory.py") < files.index("src/shop/zz_orders.py")


def test_other_languages_get_definitions(repo: Path) -> None:
    text = build_repo_map(repo, "renderCart draws nothing")
    assert "renderCart" in text and "class CartView" in text
    assert "HandleCart" in text and "deploy_cart" in text
    assert file_lines(text)[0] == "web/app.js"


def test_syntax_error_file_is_tolerated(repo: Path) -> None:
    text = build_repo_map(repo, "oops in broken")
    assert "src/shop/broken.py" in text and "fine_before" in text


def test_skips_vcs_vendored_binary_and_symlinks(repo: Path) -> None:
    text = build_repo_map(repo, TASK, token_budget=10_000)
    for bad in (".git", "node_modules", ".venv", "cart.png", "linked_dir", "linked_cart", "secret"):
        assert bad not in text, bad


@pytest.mark.parametrize("budget", [20, 60, 150, 2000])
def test_budget_is_respected(repo: Path, budget: int) -> None:
    text = build_repo_map(repo, TASK, token_budget=budget)
    assert len(text) <= budget * 4


def test_small_budget_keeps_the_top_file_and_says_more(repo: Path) -> None:
    text = build_repo_map(repo, TASK, token_budget=60)
    assert file_lines(text)[0] == "src/shop/cart.py"
    assert "more files not shown]" in text


def test_empty_repo_and_split_words(tmp_path: Path) -> None:
    assert "no source files" in build_repo_map(tmp_path, "anything")
    assert split_words("parseHTTPResponse_v2") == ["parse", "http", "response", "v", "2"]


def test_a_copy_of_the_same_files_is_not_parsed_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet maps the same repo attempt after attempt: parsing is done once per content,
    and a changed file is parsed again."""
    import shutil

    from corral.agent import repomap

    parsed: list[str] = []
    real = repomap._parse_python

    def counted(info: repomap.FileInfo, text: str) -> None:
        parsed.append(info.path)
        real(info, text)

    monkeypatch.setattr(repomap, "_parse_python", counted)
    first = build_repo_map(repo, TASK)
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    parsed.clear()
    assert build_repo_map(copy, TASK) == first and parsed == []
    put(copy, "src/shop/cart.py", "class Basket:\n    def grand_total(self): ...\n")
    again = build_repo_map(copy, TASK)
    assert parsed == ["src/shop/cart.py"] and "class Basket" in again


def test_python_files_parse_from_many_threads_at_once() -> None:
    # Repo maps are built in asyncio.to_thread, several at once. CPython 3.11's ast.parse
    # counts its depth in interpreter-wide state, so a finalizer run by the collector
    # mid-parse (which lets another thread in) failed the attempt with "SystemError:
    # AST constructor recursion depth mismatch".
    text = Path(repomap.__file__).read_text()
    errors: list[BaseException] = []

    class Finalized:
        def __init__(self) -> None:
            self.cycle = self

        def __del__(self) -> None:
            sum(range(50))

    def parse_many() -> None:
        for _ in range(60):
            for _ in range(30):
                Finalized()
            try:
                repomap._parse_python(repomap.FileInfo("m.py"), text)
            except SystemError as e:
                errors.append(e)

    threads = [threading.Thread(target=parse_many) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
