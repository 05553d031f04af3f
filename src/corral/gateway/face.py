"""The gateway's OpenAI-compatible face, for agent CLIs running inside sandboxes.

A sandbox gets a Unix socket and a per-attempt token, never a provider key. The token
maps to a `Grant`: the attempt's budget scope, the deployments it may use, its priority
and deadline; every request made with it goes through `Gateway.complete`, so limits,
budgets, fallbacks and recording apply exactly as for in-process agents.

Public routes: POST /v1/chat/completions (JSON, or `stream: true` as one SSE burst),
GET /v1/models. Admin routes (serve them on a separate socket the sandbox cannot see):
POST /admin/tokens, POST /admin/tokens/revoke, POST /admin/route (the config's routing
rules, for workers that hold no config), PUT /admin/budgets, GET /admin/budgets,
GET /admin/stats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from corral.domain import Completion, ConfigError, ModelError, ProviderError
from corral.domain.errors import BudgetExceeded, RateLimited
from corral.gateway.budget import BudgetScope
from corral.gateway.decoded import Decoded
from corral.gateway.gateway import Gateway
from corral.gateway.http11 import HttpRequest, HttpResponse, HttpServer
from corral.gateway.routing import RouteDecision, TaskInfo
from corral.models import ContextWindowExceeded
from corral.models.openai_format import completion_to_openai, one_line

__all__ = ["COST_HEADER", "Face", "Grant", "Grants", "serve_face"]

# What the gateway charged for a call, for clients that keep their own count (workers).
COST_HEADER = "x-corral-cost-usd"


@dataclass(frozen=True)
class Grant:
    scope: BudgetScope
    models: tuple[str, ...]  # deployments allowed, in fallback order
    priority: int = 0
    deadline: float | None = None  # time.monotonic() instant


class Grants:
    """Tokens → grants. Only a hash of each token is kept, and compared in constant time."""

    def __init__(self) -> None:
        self._by_hash: dict[str, tuple[str, Grant]] = {}
        self._issued = 0

    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(self, grant: Grant) -> str:
        token = "crl-" + secrets.token_urlsafe(32)
        digest = self._hash(token)
        self._by_hash[digest] = (digest, grant)
        self._issued += 1
        if self._issued % 1024 == 0:  # a long-lived service: drop grants past their deadline
            now = time.monotonic()
            for key, (_, old) in list(self._by_hash.items()):
                if old.deadline is not None and old.deadline < now:
                    del self._by_hash[key]
        return token

    def __len__(self) -> int:
        return len(self._by_hash)

    def revoke(self, token: str) -> bool:
        return self._by_hash.pop(self._hash(token), None) is not None

    def lookup(self, token: str) -> Grant | None:
        digest = self._hash(token)
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            return None
        deadline = found[1].deadline
        if deadline is not None and deadline < time.monotonic():
            del self._by_hash[digest]  # past its attempt's deadline: never valid again
            return None
        return found[1]


def _json(status: int, body: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), headers=dict(headers))


def _error(status: int, message: str, kind: str, code: str | None = None) -> HttpResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(status, body)


def _sse(payload: dict[str, Any]) -> bytes:
    """A whole completion as a chat.completion.chunk stream (clients that insist on
    streaming get the answer in one burst)."""
    choice = payload["choices"][0]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [dict(c, index=i) for i, c in enumerate(message["tool_calls"])]
    base = {k: payload[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
        base | {"choices": [], "usage": payload["usage"]},
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


class Face:
    """HTTP handlers over one Gateway; `handle` is public, `handle_admin` is not."""

    def __init__(self, gateway: Gateway, grants: Grants | None = None) -> None:
        self.gateway = gateway
        self.grants = grants or Grants()
        self._responses = 0
        self._decoded = Decoded()  # what clients sent before: their history, tool sets

    def issue_token(
        self,
        scope: BudgetScope,
        *,
        models: Sequence[str] | None = None,
        priority: int = 0,
        deadline: float | None = None,
    ) -> str:
        """A token for one attempt; `models` defaults to every deployment."""
        names = tuple(models) if models else tuple(self.gateway.slots)
        for name in names:
            self.gateway.candidates(name)  # unknown names fail here, not in the sandbox
        return self.grants.issue(Grant(scope, names, priority, deadline))

    # --- public ----------------------------------------------------------------------

    def _grant(self, request: HttpRequest) -> Grant | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        token = token or request.headers.get("api-key", "")
        return self.grants.lookup(token) if token else None

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/")
        if path not in ("/v1/models", "/models", "/v1/chat/completions", "/chat/completions"):
            return _error(404, f"no route {request.method} {request.path}", "invalid_request_error")
        grant = self._grant(request)
        if grant is None:
            return _error(
                401, "missing or unknown gateway token", "invalid_request_error", "invalid_api_key"
            )
        if path.endswith("/models"):
            if request.method != "GET":
                return _error(405, "use GET", "invalid_request_error")
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "corral"}
                for m in grant.models
            ]
            return _json(200, {"object": "list", "data": data})
        if request.method != "POST":
            return _error(405, "use POST", "invalid_request_error")
        return await self._chat(request, grant)

    async def _chat(self, request: HttpRequest, grant: Grant) -> HttpResponse:
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            raw = body.get("messages") or []
            if not isinstance(raw, list) or not raw:
                raise ValueError("'messages' must be a non-empty list")
            messages = self._decoded.messages(raw)
            tools = self._decoded.tools(body.get("tools"))
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            max_tokens = limit if isinstance(limit, int) and limit > 0 else None
        except ValueError as exc:
            return _error(400, one_line(str(exc)), "invalid_request_error")
        wanted = body.get("model")
        if wanted in (None, "", "auto", "default"):
            target: tuple[str, ...] = grant.models
        elif wanted in grant.models:
            target = (wanted,)
        else:
            return _error(
                404,
                f"model {wanted!r} is not available with this token; use one of "
                f"{', '.join(grant.models)}",
                "invalid_request_error",
                "model_not_found",
            )
        try:
            completion = await self.gateway.complete(
                target,
                messages,
                tools,
                scope=grant.scope,
                priority=grant.priority,
                deadline=grant.deadline,
                max_tokens=max_tokens,
            )
        except BudgetExceeded as exc:
            return _error(402, one_line(str(exc)), "budget_exceeded", "budget_exceeded")
        except RateLimited as exc:
            response = _error(429, one_line(str(exc)), "rate_limit_exceeded", "rate_limit_exceeded")
            return dataclasses.replace(response, headers={"retry-after": "5"})
        except ContextWindowExceeded as exc:
            return _error(
                400, one_line(str(exc)), "invalid_request_error", "context_length_exceeded"
            )
        except (ProviderError, ModelError, ConfigError) as exc:
            return _error(502, one_line(str(exc)), "upstream_error", "upstream_error")
        return self._answer(completion, target[0], bool(body.get("stream")))

    def _answer(self, completion: Completion, model: str, stream: bool) -> HttpResponse:
        self._responses += 1
        payload = completion_to_openai(
            completion, model=model, response_id=f"chatcmpl-corral-{self._responses}"
        )
        payload["usage"]["cost_usd"] = completion.cost_usd
        if stream:
            return HttpResponse(200, _sse(payload), content_type="text/event-stream")
        return _json(200, payload, **{COST_HEADER: repr(completion.cost_usd)})

    # --- admin -----------------------------------------------------------------------

    async def handle_admin(self, request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            return _error(400, "the body is not JSON", "invalid_request_error")
        route = (request.method, request.path.rstrip("/"))
        try:
            if route == ("POST", "/admin/tokens"):
                return await self._admin_issue(body)
            if route == ("POST", "/admin/route"):
                return _json(200, self._route(body).model_dump(mode="json"))
            if route == ("POST", "/admin/tokens/revoke"):
                return _json(200, {"revoked": self.grants.revoke(str(body.get("token", "")))})
            if route == ("PUT", "/admin/budgets"):
                limit = body.get("limit_usd")
                await self.gateway.ledger.set_limit(
                    str(body["key"]), None if limit is None else float(limit)
                )
                return _json(200, {"ok": True})
            if route == ("GET", "/admin/budgets"):
                return _json(200, {"budgets": await self._budgets()})
            if route == ("GET", "/admin/stats"):
                return _json(200, dataclasses.asdict(self.gateway.stats))
        except ConfigError as exc:
            return _error(400, one_line(str(exc)), "invalid_request_error")
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, one_line(f"{type(exc).__name__}: {exc}"), "invalid_request_error")
        return _error(404, f"no route {request.method} {request.path}", "invalid_request_error")

    def _route(self, body: dict[str, Any]) -> RouteDecision:
        if not self.gateway.config.routes:
            raise ConfigError("model 'route' needs routes in the gateway service's config")
        return self.gateway.route(TaskInfo.model_validate(body))

    async def _admin_issue(self, body: dict[str, Any]) -> HttpResponse:
        raw = body.get("scope") or {}
        scope = BudgetScope(**{k: str(v) for k, v in raw.items() if v is not None})
        for key, usd in (body.get("budgets") or {}).items():
            await self.gateway.ledger.set_limit(str(key), float(usd))
        ttl = body.get("ttl_s")
        deadline = time.monotonic() + float(ttl) if ttl else None
        token = self.issue_token(
            scope,
            models=body.get("models"),
            priority=int(body.get("priority", 0)),
            deadline=deadline,
        )
        return _json(200, {"token": token, "scope": list(scope.keys())})

    async def _budgets(self) -> list[dict[str, Any]]:
        lister = getattr(self.gateway.ledger, "keys", None)
        keys: list[str] = list(lister()) if callable(lister) else []
        out = []
        for key in keys:
            state = await self.gateway.ledger.state(key)
            out.append(
                {
                    "key": key,
                    "limit_usd": state.limit_usd,
                    "spent_usd": state.spent_usd,
                    "reserved_usd": state.reserved_usd,
                }
            )
        return out


async def serve_face(
    face: Face,
    socket_path: str,
    *,
    admin_path: str | None = None,
    on_ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Serve the public face (socket mode 0666: sandboxes run as other users) and the
    admin face (0600: only this user) until cancelled."""
    public = HttpServer(face.handle, path=socket_path, mode=0o666)
    admin = HttpServer(face.handle_admin, path=admin_path, mode=0o600) if admin_path else None
    servers = [public, *([admin] if admin else [])]
    for server in servers:
        await server.start()
    try:
        if on_ready is not None:
            on_ready([s.address for s in servers])
        await asyncio.Event().wait()
    finally:
        for server in servers:
            await server.close()
