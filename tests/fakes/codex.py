"""Fake ChatGPT Codex backend: ``base_url`` plays ``RELAYGATE_CODEX_BASE_URL`` (``.../backend-api``).

Routes (protocols §4):

- ``POST {base}/codex/responses``: ``Authorization: Bearer`` must be a token the shared
  :class:`~tests.fakes.identities.IdentityRegistry` knows and that has not expired (else the recorded
  401), ``chatgpt-account-id`` must name that token's account (else the same 401), the body must pass
  the backend's rules (``tests.codex_rules.assert_codex_accepts``; else 400 ``{"detail": ...}``), an
  account whose usage limit is exhausted gets the 429; then the scripted answer streams, carrying the
  account's ``x-codex-*`` quota headers.
- ``GET {base}/codex/models?client_version=...``: the ``ModelsResponse`` shape of ``openai/codex``
  (``{"models": [ModelInfo]}`` + ``ETag``); 400 without ``client_version``.
- ``GET {base}/wham/usage``: the recorded body with the account's values.

Scripting: ``script(answer, account=..., times=N, endpoint=...)`` queues answers, ``set_default``
sets the fallback (default: the recorded ``responses_stream_text.sse`` with the requested model).
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web

from tests.codex_rules import CodexRejection, assert_codex_accepts
from tests.fakes.codex_answers import (
    Answer,
    CodexCall,
    FixtureReply,
    HttpReply,
    UsageLimitReached,
    answer_from_spec,
)
from tests.fakes.codex_quota import Quota, StampedQuota, Window
from tests.fakes.identities import Identity, IdentityRegistry, TokenState
from tests.fakes.server import FakeServer, json_response, main
from tests.fixtures import load_http

Endpoint = Literal["responses", "models", "usage"]
DEFAULT_MODELS = ("gpt-5.5", "gpt-5.4", "gpt-5.4-mini")
_EFFORTS = ("low", "medium", "high", "xhigh")


def model_info(
    slug: str,
    *,
    context_window: int = 272_000,
    efforts: Sequence[str] = _EFFORTS,
    default_effort: str = "medium",
    priority: int = 1,
    visibility: str = "list",
    **extra: Any,
) -> dict[str, Any]:
    """One ``ModelInfo`` as ``openai/codex`` ``codex-rs/protocol/src/openai_models.rs`` reads it."""
    info: dict[str, Any] = {
        "slug": slug,
        "display_name": slug,
        "description": f"{slug} (fake)",
        "default_reasoning_level": default_effort,
        "supported_reasoning_levels": [{"effort": e, "description": e} for e in efforts],
        "shell_type": "shell_command",
        "visibility": visibility,
        "supported_in_api": True,
        "priority": priority,
        "upgrade": None,
        "base_instructions": "",
        "supports_reasoning_summaries": True,
        "support_verbosity": True,
        "default_verbosity": "low",
        "apply_patch_tool_type": "freeform",
        "truncation_policy": {"mode": "tokens", "limit": 10_000},
        "supports_parallel_tool_calls": True,
        "context_window": context_window,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
    }
    info.update(extra)
    return info


@dataclass(frozen=True)
class Account:
    """An identity the Codex fake serves and a valid access token for it."""

    identity: Identity
    access_token: str

    @property
    def account_id(self) -> str:
        return self.identity.account_id

    @property
    def email(self) -> str:
        return self.identity.email

    def headers(self) -> dict[str, str]:
        """The auth headers a correct client sends."""
        return {"authorization": f"Bearer {self.access_token}", "chatgpt-account-id": self.account_id}


def rule_violation(body: Any) -> str | None:
    """The backend's 400 ``detail`` for ``body``, or ``None`` when it is accepted."""
    try:
        assert_codex_accepts(body)
    except CodexRejection as exc:
        return exc.detail
    return None


def _unauthorized(reason: str, *, expired: bool = False) -> web.Response:
    """The recorded 401; expired tokens also get Codex's ``x-openai-authorization-error`` hint."""
    status, headers, body = load_http("codex/codex_401_unauthorized.http")
    headers = dict(headers, **{"x-request-id": str(uuid.uuid4()), "x-fake-reason": reason})
    if expired:
        headers["x-openai-authorization-error"] = "token_expired"
        headers["x-error-json"] = base64.b64encode(b'{"error":{"code":"token_expired"}}').decode()
    return web.Response(status=status, body=body, headers=headers)


def _detail(status: int, detail: str) -> web.Response:
    return json_response({"detail": detail}, status=status, headers={"x-request-id": str(uuid.uuid4())})


class FakeCodex(FakeServer):
    """The fake backend. Thread-safe scripting; see the module docstring for the rules it enforces."""

    prefix = "/backend-api"
    name = "fake-codex"

    def __init__(self, registry: IdentityRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry or IdentityRegistry()
        self._lock = threading.Lock()
        self._queues: dict[tuple[Endpoint, str | None], deque[Answer]] = {}
        self._defaults: dict[tuple[Endpoint, str | None], Answer] = {}
        self._quotas: dict[str, StampedQuota] = {}
        self._exhausted: dict[str, float] = {}
        self._models: dict[str | None, list[dict[str, Any]]] = {None: [model_info(m) for m in DEFAULT_MODELS]}
        self.models_etag = f'"{secrets.token_hex(8)}"'

    # --- accounts and tokens -------------------------------------------------------------------------

    def add_account(
        self,
        email: str,
        *,
        account_id: str | None = None,
        plan_type: str = "plus",
        lifetime: float | None = None,
    ) -> Account:
        """Register an identity and mint an access token for it (no OAuth round trip)."""
        identity = self.registry.add(email, account_id=account_id, plan_type=plan_type)
        return Account(identity, self.registry.issue_access_token(identity, lifetime=lifetime))

    # --- scripting -----------------------------------------------------------------------------------

    def script(
        self, answer: Answer, *, account: str | None = None, times: int = 1, endpoint: Endpoint = "responses"
    ) -> None:
        """The next ``times`` accepted requests (of ``account`` if given) get ``answer``."""
        with self._lock:
            self._queues.setdefault((endpoint, account), deque()).extend([answer] * times)

    def set_default(
        self, answer: Answer, *, account: str | None = None, endpoint: Endpoint = "responses"
    ) -> None:
        """The answer when nothing is queued (per account, or for everyone)."""
        with self._lock:
            self._defaults[(endpoint, account)] = answer

    def pending(self, *, account: str | None = None, endpoint: Endpoint = "responses") -> int:
        """How many scripted answers are still queued."""
        with self._lock:
            return len(self._queues.get((endpoint, account), ()))

    def set_quota(self, account_id: str, quota: Quota) -> None:
        """What the headers and ``/wham/usage`` report for an account from now on."""
        with self._lock:
            self._quotas[account_id] = StampedQuota(quota, self.registry.clock())

    def exhaust(self, account_id: str, resets_in_seconds: int = 3600) -> None:
        """Every request of the account gets the 429 ``usage_limit_reached`` until the reset passes."""
        with self._lock:
            self._exhausted[account_id] = self.registry.clock() + resets_in_seconds

    def restore(self, account_id: str) -> None:
        with self._lock:
            self._exhausted.pop(account_id, None)

    def set_models(self, models: Sequence[str | Mapping[str, Any]], *, account: str | None = None) -> None:
        """The served model list: slugs or full ``ModelInfo`` dicts."""
        infos = [model_info(m) if isinstance(m, str) else dict(m) for m in models]
        with self._lock:
            self._models[account] = infos

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._queues.clear()
            self._defaults.clear()
            self._quotas.clear()
            self._exhausted.clear()
            self._models = {None: self._models[None]}

    def responses_calls(self, account_id: str | None = None) -> list[Any]:
        """Recorded ``POST /codex/responses`` requests (of one account if given)."""
        return [
            r
            for r in self.requests_to("/codex/responses", "POST")
            if account_id is None or r.header("chatgpt-account-id") == account_id
        ]

    def _next_answer(self, endpoint: Endpoint, account_id: str) -> Answer | None:
        with self._lock:
            for key in ((endpoint, account_id), (endpoint, None)):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            for key in ((endpoint, account_id), (endpoint, None)):
                if key in self._defaults:
                    return self._defaults[key]
        return None

    def _quota(self, account_id: str) -> StampedQuota:
        with self._lock:
            stamped = self._quotas.get(account_id)
            if stamped is None:
                stamped = self._quotas[account_id] = StampedQuota(Quota(), self.registry.clock())
            return stamped

    def _exhausted_for(self, account_id: str) -> float | None:
        """Seconds until the usage limit of an exhausted account resets, else ``None``."""
        with self._lock:
            until = self._exhausted.get(account_id)
        now = self.registry.clock()
        return until - now if until is not None and until > now else None

    # --- HTTP ----------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.prefix + "/codex/responses", self._responses)
        app.router.add_get(self.prefix + "/codex/models", self._models_route)
        app.router.add_get(self.prefix + "/wham/usage", self._usage)

    def _authenticate(self, request: web.Request) -> Identity | web.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("missing bearer token")
        state, identity = self.registry.check(token.strip())
        if state is not TokenState.VALID or identity is None:
            return _unauthorized(f"token {state.value}", expired=state is TokenState.EXPIRED)
        account_header = request.headers.get("chatgpt-account-id")
        if account_header is None:
            return _unauthorized("missing chatgpt-account-id")
        if account_header != identity.account_id:
            return _unauthorized("chatgpt-account-id does not match the token")
        return identity

    def _call(
        self, request: web.Request, identity: Identity, body: Mapping[str, Any], size: int
    ) -> CodexCall:
        now = self.registry.clock()
        return CodexCall(
            request=request,
            body=body,
            body_size=size,
            identity=identity,
            quota_headers=self._quota(identity.account_id).headers(identity, now),
            now=now,
        )

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        identity = self._authenticate(request)
        if isinstance(identity, web.Response):
            return identity
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _detail(400, "Invalid JSON body")
        if (detail := rule_violation(body)) is not None:
            return _detail(400, detail)
        call = self._call(request, identity, body, len(raw))
        if (remaining := self._exhausted_for(identity.account_id)) is not None:
            return await UsageLimitReached(resets_in_seconds=int(remaining) + 1).respond(call)
        answer = self._next_answer("responses", identity.account_id) or FixtureReply()
        return await answer.respond(call)

    async def _models_route(self, request: web.Request) -> web.StreamResponse:
        identity = self._authenticate(request)
        if isinstance(identity, web.Response):
            return identity
        if not request.query.get("client_version"):
            return _detail(400, "client_version is required")
        answer = self._next_answer("models", identity.account_id)
        if answer is not None:
            return await answer.respond(self._call(request, identity, {}, 0))
        with self._lock:
            models = self._models.get(identity.account_id, self._models[None])
        return json_response({"models": models}, headers={"etag": self.models_etag})

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        identity = self._authenticate(request)
        if isinstance(identity, web.Response):
            return identity
        answer = self._next_answer("usage", identity.account_id)
        if answer is not None:
            return await answer.respond(self._call(request, identity, {}, 0))
        now = self.registry.clock()
        limited = self._exhausted_for(identity.account_id) is not None
        body = self._quota(identity.account_id).wham_usage(identity, now, limit_reached=limited)
        return json_response(body, headers={"x-oai-request-id": str(uuid.uuid4())})

    # --- control API (for a fake in another process) -------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/_fake/accounts", self._control_accounts)
        app.router.add_post("/_fake/script", self._control_script)
        app.router.add_post("/_fake/quota", self._control_quota)

    async def _control_accounts(self, request: web.Request) -> web.Response:
        spec = await request.json(loads=orjson.loads)
        account = self.add_account(
            spec["email"],
            account_id=spec.get("account_id"),
            plan_type=spec.get("plan_type", "plus"),
            lifetime=spec.get("lifetime"),
        )
        return json_response(
            {"email": account.email, "account_id": account.account_id, "access_token": account.access_token}
        )

    async def _control_script(self, request: web.Request) -> web.Response:
        """``{"answer": {...spec...}, "account": id?, "times": n?, "default": bool?, "endpoint": ...}``."""
        spec = await request.json(loads=orjson.loads)
        answer = answer_from_spec(spec["answer"])
        endpoint = spec.get("endpoint", "responses")
        if spec.get("default"):
            self.set_default(answer, account=spec.get("account"), endpoint=endpoint)
        else:
            self.script(answer, account=spec.get("account"), times=spec.get("times", 1), endpoint=endpoint)
        return json_response({"ok": True})

    async def _control_quota(self, request: web.Request) -> web.Response:
        """``{"account_id": ..., "exhaust_seconds"?: n, "quota"?: {primary_used, secondary_used}}``."""
        spec = await request.json(loads=orjson.loads)
        if "exhaust_seconds" in spec:
            self.exhaust(spec["account_id"], spec["exhaust_seconds"])
        if "quota" in spec:
            q = spec["quota"]
            self.set_quota(
                spec["account_id"],
                Quota(
                    primary=Window(q.get("primary_used", 0), 300, q.get("primary_resets_in", 9000)),
                    secondary=Window(
                        q.get("secondary_used", 0), 10080, q.get("secondary_resets_in", 500_000)
                    ),
                ),
            )
        return json_response({"ok": True})


@asynccontextmanager
async def run_fake_codex(registry: IdentityRegistry | None = None) -> AsyncIterator[FakeCodex]:
    """Start a :class:`FakeCodex` on 127.0.0.1 in the running loop (``async with run_fake_codex() as c``)."""
    async with FakeCodex(registry) as codex:
        yield codex


__all__ = [
    "DEFAULT_MODELS",
    "Account",
    "FakeCodex",
    "HttpReply",
    "model_info",
    "run_fake_codex",
]

if __name__ == "__main__":
    main(FakeCodex)
