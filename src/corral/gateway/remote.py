"""A gateway service shared by worker processes: one set of limits and budgets.

A gateway holds its rate limits and budgets in the process that runs it, so two worker
processes with a gateway each would each allow the full limit. When one machine runs
several workers (one Python process uses one core), they share one service instead
(`corral serve`, or the fleet benchmark's parent process): a worker asks the
service's admin socket for a token per attempt, carrying the attempt's budget scope,
and sends that attempt's model calls to the public socket with it. Limits, budgets,
fallbacks and recording then apply once, for the whole fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.domain import Completion, ConfigError, Message, ToolSpec
from corral.domain.errors import BudgetExceeded, ProviderError, RateLimited
from corral.gateway.budget import BudgetScope
from corral.gateway.face import COST_HEADER
from corral.gateway.routing import RouteDecision, TaskInfo
from corral.gateway.upstream import _MAX_HEAD, HttpUpstream, _read_response
from corral.models.openai_format import one_line

__all__ = ["GatewayService", "RemoteModel"]


class GatewayService:
    """The client side of a gateway service reached over its two Unix sockets."""

    # An admin call is a dictionary lookup on the service: one that takes longer means
    # the service is stuck, and an attempt must not wait on it forever.
    admin_timeout_s = 30.0

    def __init__(self, public: str | Path, admin: str | Path) -> None:
        self.public = str(public)
        self.admin = str(admin)
        self._upstreams: dict[str, HttpUpstream] = {}

    async def _admin(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.admin_timeout_s):
                return await self._admin_call(method, path, body)
        except TimeoutError:
            raise ProviderError(
                f"gateway service {self.admin}: no answer within {self.admin_timeout_s:g}s"
            ) from None

    async def _admin_call(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n")  # fmt: skip
        try:
            reader, writer = await asyncio.open_unix_connection(self.admin, limit=_MAX_HEAD)
        except OSError as exc:
            raise ProviderError(f"gateway service {self.admin}: cannot connect: {exc}") from None
        try:
            writer.write(head.encode() + raw)
            await writer.drain()
            status, _headers, data, _keep = await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise ProviderError(
                f"gateway service {self.admin}: no answer ({type(exc).__name__})"
            ) from None
        finally:
            writer.close()
        try:
            answer: dict[str, Any] = json.loads(data)
        except ValueError:
            answer = {}
        if status >= 400:
            message = (answer.get("error") or {}).get("message") or f"HTTP {status}"
            raise ProviderError(f"gateway service: {one_line(str(message))}", status=status)
        return answer

    async def issue(
        self, scope: BudgetScope, *, models: Sequence[str] | None = None,
        budgets: Mapping[str, float] | None = None, ttl_s: float | None = None,
        priority: int = 0,
    ) -> str:  # fmt: skip
        """A token for one attempt's calls (budgets: limits to set first, by key)."""
        fields = {"attempt": scope.attempt, "task": scope.task, "campaign": scope.campaign,
                  "team": scope.team}  # fmt: skip
        body: dict[str, Any] = {"scope": fields, "models": list(models or [])}
        body["priority"] = priority
        if budgets:
            body["budgets"] = dict(budgets)
        if ttl_s:
            body["ttl_s"] = ttl_s
        return str((await self._admin("POST", "/admin/tokens", body))["token"])

    async def route(self, task: TaskInfo) -> RouteDecision:
        """The service's routing rules applied to this task (a worker holds no config)."""
        try:
            answer = await self._admin("POST", "/admin/route", task.model_dump(mode="json"))
        except ProviderError as exc:
            if exc.status == 400:  # no rule for it: the config's fault, not the service's
                raise ConfigError(str(exc)) from None
            raise
        return RouteDecision.model_validate(answer)

    async def revoke(self, token: str) -> None:
        await self._admin("POST", "/admin/tokens/revoke", {"token": token})

    def model(
        self, target: str | RouteDecision, scope: BudgetScope, *, context_window: int = 128_000,
        budgets: Mapping[str, float] | None = None, ttl_s: float | None = None,
        priority: int = 0,
    ) -> RemoteModel:  # fmt: skip
        """An attempt's model: one deployment, or a route's models in fallback order. Its
        token is asked for on the first call."""
        models = list(target.models) if isinstance(target, RouteDecision) else [target]
        grant = {"models": models, "budgets": budgets, "ttl_s": ttl_s, "priority": priority}
        # "auto": the service tries the token's models in order (its fallbacks).
        deployment = "auto" if isinstance(target, RouteDecision) else target
        return RemoteModel(self, deployment, scope, context_window, grant, name=",".join(models))

    def upstream(self, deployment: str, context_window: int) -> HttpUpstream:
        """One keep-alive connection pool per deployment, shared by every attempt."""
        found = self._upstreams.get(deployment)
        if found is None:
            found = HttpUpstream(
                "http://gateway/v1", deployment, api_key=None,
                context_window=context_window, unix_socket=self.public,
            )  # fmt: skip
            self._upstreams[deployment] = found
        return found

    async def aclose(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()
        self._upstreams.clear()


class RemoteModel:
    """An attempt's model, served by the gateway service under the attempt's token."""

    def __init__(
        self, service: GatewayService, deployment: str, scope: BudgetScope,
        context_window: int, grant: Mapping[str, Any], *, name: str | None = None,
    ) -> None:  # fmt: skip
        self.service = service
        self.deployment = deployment
        self.scope = scope
        self.name = f"gateway:{name or deployment}"
        self.context_window = context_window
        self._grant = grant
        self._token: str | None = None
        # The service's answer outlives a call cancelled while it waited (the attempt was
        # stopped): `aclose` then still learns the token and revokes it.
        self._issuing: asyncio.Future[str] | None = None

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        try:
            completion, headers = await self._call(messages, tools)
        except ProviderError as exc:
            if exc.status != 401:
                raise
            # The service lost our token (it restarted): ask for a new one, once.
            self._token = None
            completion, headers = await self._call(messages, tools)
        cost = float(headers.get(COST_HEADER) or 0.0)
        return completion.model_copy(update={"cost_usd": cost})

    async def _call(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> tuple[Completion, dict[str, str]]:
        if self._token is None:  # asked on first use: building the model stays synchronous
            if self._issuing is None:
                self._issuing = asyncio.ensure_future(self.service.issue(self.scope, **self._grant))
            issuing = self._issuing
            try:
                self._token = await asyncio.shield(issuing)
            finally:
                if issuing.done() and self._issuing is issuing:
                    self._issuing = None
        upstream = self.service.upstream(self.deployment, self.context_window)
        try:
            # max_tokens 0: the deployment's own limit, set in the service's config.
            return await upstream.call(messages, tools, max_tokens=0, api_key=self._token)
        except ProviderError as exc:
            if exc.status == 402:
                raise BudgetExceeded(str(exc)) from None
            if exc.status == 429:
                raise RateLimited(str(exc), status=429) from None
            raise

    async def aclose(self) -> None:
        token, self._token = self._token, None
        issuing, self._issuing = self._issuing, None
        if token is None and issuing is not None:
            with contextlib.suppress(Exception):
                token = await issuing
        if token is not None:
            await self.service.revoke(token)
