"""Secrets inside git binary patches (base85 + zlib, as `git diff --binary` writes them):
found, held back from delivery and redacted from what corral stores."""

from __future__ import annotations

import random
from pathlib import Path

from tests.unit.policy.gitrepo import make_repo, staged_diff

from corral.domain import Observed, event_to_json
from corral.orchestrator.policy import Redactor
from corral.orchestrator.policy import binary_patch as bp
from corral.orchestrator.policy.diffs import added_secret
from corral.orchestrator.policy.redact import BINARY_MARK

VALUE = "deploy-value-5e8d1c2b"
GH = "ghp_" + "Q7" * 18
R = Redactor({VALUE: "env:DEPLOY_TOKEN"})


def _noise(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _diff(repo: Path, files: dict[str, bytes]) -> str:
    return staged_diff(repo, files, binary=True)


def _carried(diff: str) -> str:
    return "\n".join(h.text or "" for h in bp.hunks(diff))


def test_a_new_binary_file_is_decoded_and_its_secret_found(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"keep.txt": b"x\n"})
    diff = _diff(repo, {"blob.bin": b"\x00\x01header " + VALUE.encode() + b" " + GH.encode()})
    assert "literal" in diff and VALUE not in diff and GH not in diff  # hidden by encoding
    assert VALUE in _carried(diff) and GH in _carried(diff)
    assert R.finds(diff)
    assert added_secret(diff, R) == "blob.bin (binary)"


def test_a_secret_inserted_into_a_large_binary_travels_in_a_delta_and_is_found(
    tmp_path: Path,
) -> None:
    old = _noise(40_000)
    repo = make_repo(tmp_path, {"model.bin": old})
    # A long insert: git cuts it into pieces of 127 bytes, and the secret straddles a cut.
    inserted = b"\x00" * 120 + VALUE.encode() + b"\x00" * 300
    diff = _diff(repo, {"model.bin": old[:20_000] + inserted + old[20_000:]})
    assert "delta" in diff and VALUE not in diff
    assert VALUE in _carried(diff)
    assert added_secret(diff, R) == "model.bin (binary)"


def test_redaction_removes_the_hunk_that_holds_a_secret_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"a.txt": b"one\n"})
    diff = _diff(
        repo,
        {
            "secret.bin": b"\x00" + GH.encode(),
            "clean.bin": b"\x00\x02 nothing to see",
            "a.txt": b"one\ntwo\n",
        },
    )
    shown = R.redact(diff)
    assert GH not in _carried(shown) and BINARY_MARK in shown
    assert "nothing to see" in _carried(shown)  # the clean file's hunks are untouched
    assert "+two" in shown
    assert added_secret(shown, R, redacted=True) == "secret.bin (binary)"
    # Events are redacted field by field: a diff inside one is cleaned the same way.
    assert R.redact_obj({"diff": diff}) == {"diff": shown}


def test_a_clean_binary_change_passes_untouched(tmp_path: Path) -> None:
    old = _noise(30_000)
    repo = make_repo(tmp_path, {"img.bin": old})
    diff = _diff(repo, {"img.bin": old[:100] + b"\x00tweak\x00" + old[100:], "new.bin": b"\0ok"})
    assert not R.finds(diff)
    assert R.redact(diff) is diff
    assert added_secret(diff, R) is None


def test_a_hunk_that_cannot_be_decoded_is_held(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"keep.txt": b"x\n"})
    diff = _diff(repo, {"blob.bin": b"\x00 plain data"})
    head = diff.index("literal ")
    data = diff.index("\n", head) + 1
    broken = diff[:data] + "Z" + "~" * 10 + diff[diff.index("\n", data) :]
    assert added_secret(broken, R) == "blob.bin (binary)"
    assert BINARY_MARK in R.redact(broken)


def test_an_event_carrying_a_binary_patch_is_redacted_when_encoded(tmp_path: Path) -> None:
    """The patch's encoding hides the secret from the JSON text; the patch's mark does not,
    so the event is searched decoded."""
    repo = make_repo(tmp_path, {"keep.txt": b"x\n"})
    diff = _diff(repo, {"blob.bin": b"\x00\x01header " + VALUE.encode()})
    event = Observed(attempt_id="a", seq=1, call_id="c", tool="bash", output=diff)
    clean, text = R.encode_event(event)
    assert isinstance(clean, Observed) and BINARY_MARK in clean.output
    assert VALUE not in _carried(clean.output) and text == event_to_json(clean)
