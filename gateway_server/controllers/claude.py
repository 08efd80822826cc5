"""``/claude/config``: point Claude Code's settings at this gateway, or back at Anthropic (DESIGN §6.1).

``GET`` shows the file (secrets masked) and its mode; ``POST /proxy`` writes the gateway's address as
it is bound — the address and port this request came in on, loopback for a server listening on every
interface — and ``POST /direct`` undoes it, writing ``{"apiKey"}`` as ``ANTHROPIC_API_KEY`` only when
given. A settings file that is not valid JSON is refused with 409 and left as it is. The file logic is
:mod:`gateway_server.claude_config`; the bodies come from :class:`gateway_server.claude_api.ClaudeConfig`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from gateway_server.admin_requests import optional_string, read_body
from gateway_server.claude_api import ClaudeConfig, gateway_base_url
from gateway_server.errors import admin_errors


def claude_of(request: Request[Any, Any, Any]) -> ClaudeConfig:
    claude: ClaudeConfig = request.app.state.claude_config
    return claude


def base_url_of(request: Request[Any, Any, Any]) -> str:
    """This gateway's URL for a client on this machine: the server socket the request reached."""
    server = request.scope.get("server")
    bound = (str(server[0]), int(server[1])) if server and server[1] is not None else None
    return gateway_base_url(request.app.state.config, bound)


class ClaudeConfigController(Controller):
    """Claude Code's settings file."""

    path = "/claude/config"
    exception_handlers = {Exception: admin_errors}

    @get("/")
    async def show(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await claude_of(request).show(base_url_of(request))

    @post("/proxy", status_code=200)
    async def proxy(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        await read_body(request, required=False)  # a malformed body is still a 400
        return await claude_of(request).proxy(base_url_of(request))

    @post("/direct", status_code=200)
    async def direct(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        api_key = optional_string(await read_body(request, required=False), "apiKey")
        return await claude_of(request).direct(base_url_of(request), api_key)
