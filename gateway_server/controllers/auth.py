"""``GET /auth/callback``: where the OAuth issuer sends the browser back after a login (DESIGN §6, §7).

The pool's own one-shot listener (``RELAYGATE_OAUTH_CALLBACK_PORT``) normally receives the redirect;
this route completes the same pending logins when the redirect reaches the gateway itself. The
``state`` must be one the pool handed out: a wrong or unknown state answers 400 and stores nothing.
An ``error`` from the issuer (``access_denied``, ``missing_codex_entitlement``…) is shown by name.

The answer is a small self-contained HTML page for the browser that followed the redirect; every
value shown in it is escaped.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from gateway_core.errors import InvalidRequestError
from gateway_server import accounts_api
from gateway_server.errors import admin_errors, as_gateway_error
from gateway_server.requests import gateway_of

# What an issuer's error means for the user (openai/codex login server: the workspace has no Codex).
_OAUTH_ERROR_HINTS: dict[str, str] = {
    "missing_codex_entitlement": "This ChatGPT workspace does not include Codex; use another account.",
    "access_denied": "The login was cancelled or refused.",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>relaygate: {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{message}</p><p>{hint}</p></body></html>
"""

_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "referrer-policy": "no-referrer",
}


def page(title: str, message: str, hint: str = "", *, status: int = 200) -> Response[str]:
    """A small HTML answer; ``title``, ``message`` and ``hint`` are escaped here."""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message), hint=html.escape(hint))
    return Response(content=body, status_code=status, media_type=MediaType.HTML, headers=_HEADERS)


def _issuer_error(error: str, description: str | None) -> Response[str]:
    named = description or error
    hint = _OAUTH_ERROR_HINTS.get(named) or _OAUTH_ERROR_HINTS.get(error, "")
    return page("Login failed", f"The login was not completed: {named} ({error}).", hint, status=400)


class AuthController(Controller):
    """The OAuth redirect target."""

    path = "/auth"
    exception_handlers = {Exception: admin_errors}

    @get("/callback", media_type=MediaType.HTML)
    async def callback(
        self,
        request: Request[Any, Any, Any],
        code: FromQuery[str | None] = None,
        login_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: FromQuery[str | None] = None,
        error_description: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> Response[str]:
        if error:
            return _issuer_error(error, error_description)
        try:
            if not code or not login_state:
                missing = "code" if not code else "state"
                raise InvalidRequestError(f"{missing}: the callback has no {missing}", param=missing)
            pool = accounts_api.select_pool(gateway_of(request).account_pools, provider or None)
            account = await pool.finish_login(code=code, state=login_state)
        except Exception as exc:
            failure = as_gateway_error(exc)
            return page(
                "Login failed",
                failure.message,
                "Start the login again from relaygate.",
                status=failure.status,
            )
        return page(
            "Account added",
            f"{account.email} is ready to use in relaygate.",
            "You can close this window.",
        )
