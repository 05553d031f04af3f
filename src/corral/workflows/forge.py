"""Open or update a pull/merge request through the GitHub or GitLab API, idempotently.

Idempotent by branch: an open request whose head is our branch is updated (title, body),
never duplicated. Creating one that a concurrent run just made (GitHub answers 422) falls
back to the lookup. Tokens come from the host environment and never reach a sandbox.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from corral.domain import CorralError

_GITHUB = re.compile(r"github\.com[:/](?P<path>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")
_GITLAB = re.compile(r"gitlab\.com[:/](?P<path>\S+?)(?:\.git)?/?$")


class ForgeError(CorralError):
    """The forge API refused or failed; the delivery is retried (it is idempotent)."""


@dataclass(frozen=True)
class Forge:
    kind: str  # github | gitlab
    api: str
    project: str  # owner/name (GitHub) or group/sub/name (GitLab)
    token: str

    def auth_header_for_git(self) -> str:
        user = "x-access-token" if self.kind == "github" else "oauth2"
        raw = base64.b64encode(f"{user}:{self.token}".encode()).decode()
        return f"Authorization: Basic {raw}"


def detect(url: str | None, env: dict[str, str]) -> Forge | None:
    """The forge for a remote URL, if its token is set (CORRAL_*_REPO overrides the path)."""
    gh, gl = env.get("GITHUB_TOKEN"), env.get("GITLAB_TOKEN")
    if gh:
        path = env.get("CORRAL_GITHUB_REPO") or _match(_GITHUB, url)
        if path:
            api = env.get("CORRAL_GITHUB_API", "https://api.github.com").rstrip("/")
            return Forge("github", api, path, gh)
    if gl:
        path = env.get("CORRAL_GITLAB_PROJECT") or _match(_GITLAB, url)
        if path:
            api = env.get("CORRAL_GITLAB_API", "https://gitlab.com/api/v4").rstrip("/")
            return Forge("gitlab", api, path, gl)
    return None


def _match(rx: re.Pattern[str], url: str | None) -> str | None:
    m = rx.search(url or "")
    return m["path"] if m else None


async def open_or_update(
    forge: Forge, *, branch: str, base: str, title: str, body: str
) -> dict[str, Any]:
    """{"number", "url", "action": created|updated} for the request from BRANCH."""
    async with httpx.AsyncClient(timeout=30, headers=_headers(forge)) as client:
        if forge.kind == "github":
            return await _github(client, forge, branch, base, title, body)
        return await _gitlab(client, forge, branch, base, title, body)


def _headers(forge: Forge) -> dict[str, str]:
    if forge.kind == "github":
        return {
            "Authorization": f"Bearer {forge.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    return {"PRIVATE-TOKEN": forge.token}


async def _call(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    try:
        resp = await client.request(method, url, **kw)
    except httpx.HTTPError as e:
        raise ForgeError(f"{method} {url}: {e.__class__.__name__}: {e}") from None
    return resp


def _ok(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        raise ForgeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} "
                         f"{resp.text[:200]}")  # fmt: skip
    return resp.json()


async def _github(
    client: httpx.AsyncClient, f: Forge, branch: str, base: str, title: str, body: str
) -> dict[str, Any]:
    root = f"{f.api}/repos/{f.project}/pulls"
    owner = f.project.split("/")[0]

    async def find() -> dict[str, Any] | None:
        found = _ok(await _call(client, "GET", root,
                                params={"head": f"{owner}:{branch}", "state": "open"}))  # fmt: skip
        return found[0] if found else None

    pr = await find()
    action = "updated"
    if pr is None:
        resp = await _call(client, "POST", root, json={"title": title, "head": branch,
                                                        "base": base, "body": body})  # fmt: skip
        if resp.status_code == 422:  # already exists (a concurrent or earlier run)
            pr = await find()
            if pr is None:
                _ok(resp)
        else:
            pr, action = _ok(resp), "created"
    if action == "updated":
        assert pr is not None
        pr = _ok(await _call(client, "PATCH", f"{root}/{pr['number']}",
                             json={"title": title, "body": body}))  # fmt: skip
    assert pr is not None
    return {"number": pr["number"], "url": pr.get("html_url", ""), "action": action}


async def _gitlab(
    client: httpx.AsyncClient, f: Forge, branch: str, base: str, title: str, body: str
) -> dict[str, Any]:
    root = f"{f.api}/projects/{quote(f.project, safe='')}/merge_requests"
    found = _ok(await _call(client, "GET", root,
                            params={"source_branch": branch, "state": "opened"}))  # fmt: skip
    if found:
        mr = _ok(await _call(client, "PUT", f"{root}/{found[0]['iid']}",
                             json={"title": title, "description": body}))  # fmt: skip
        action = "updated"
    else:
        resp = await _call(client, "POST", root, json={
            "source_branch": branch, "target_branch": base, "title": title,
            "description": body})  # fmt: skip
        if resp.status_code == 409:  # created meanwhile (a concurrent or earlier run)
            return await _gitlab(client, f, branch, base, title, body)
        mr, action = _ok(resp), "created"
    return {"number": mr["iid"], "url": mr.get("web_url", ""), "action": action}
