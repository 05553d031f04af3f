"""Merge requests on GitLab are opened once and updated after that, even when a retry or a
concurrent run races the creation."""

from __future__ import annotations

import asyncio

import pytest

from corral.testing.fake_gitlab import FakeGitLab
from corral.workflows.forge import Forge, ForgeError, open_or_update


async def test_created_once_then_updated() -> None:
    with FakeGitLab(token="glpat-x") as gl:
        forge = Forge("gitlab", gl.api, "group/sub/svc", "glpat-x")
        first = await open_or_update(forge, branch="corral/cve-1", base="main", title="a", body="b")
        second = await open_or_update(
            forge, branch="corral/cve-1", base="main", title="a2", body="b2"
        )
        assert first["action"] == "created" and second["action"] == "updated"
        assert first["number"] == second["number"] == 1
        mrs = gl.merge_requests["group/sub/svc"]
        assert len(mrs) == 1 and mrs[0]["title"] == "a2" and mrs[0]["description"] == "b2"
        assert mrs[0]["target_branch"] == "main"


async def test_concurrent_runs_make_one_merge_request() -> None:
    with FakeGitLab(token="t") as gl:
        forge = Forge("gitlab", gl.api, "o/r", "t")
        results = await asyncio.gather(
            *(open_or_update(forge, branch="corral/cve-2", base="main", title="t", body="b")
              for _ in range(4))
        )  # fmt: skip
        assert len(gl.merge_requests["o/r"]) == 1
        assert {r["number"] for r in results} == {1}


async def test_a_wrong_token_is_a_clear_error() -> None:
    with FakeGitLab(token="right") as gl:
        forge = Forge("gitlab", gl.api, "o/r", "wrong")
        with pytest.raises(ForgeError, match="401"):
            await open_or_update(forge, branch="b", base="main", title="t", body="b")
