"""Fake upstreams for integration tests: real HTTP servers on 127.0.0.1 that enforce the rules of the
ChatGPT Codex backend, the ChatGPT OAuth issuer and the Kilo/OpenRouter gateway, driven by the
recorded fixtures and scriptable per request.

Typical use, all three linked through one identity registry::

    async with run_fake_upstreams() as up:
        env = up.env()                       # RELAYGATE_CODEX_BASE_URL, RELAYGATE_OAUTH_ISSUER, ...
        tokens = up.oauth.issue_tokens(up.registry.add("a@example.com", plan_type="plus"))
        up.codex.script(tool_call("Read", {"file_path": "/tmp/x"}))
        ...
        assert up.codex.responses_calls()[0].body["store"] is False
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

from tests.fakes.chat_stream import ChatContent, ChatToolCall, ChatUsage
from tests.fakes.codex import Account, FakeCodex, model_info, run_fake_codex
from tests.fakes.codex_answers import (
    FixtureReply,
    HttpReply,
    StreamReply,
    UsageLimitReached,
    bad_request,
    cut,
    failed,
    incomplete,
    overloaded,
    rate_limited,
    reasoning_text,
    server_error,
    stream_error,
    text,
    tool_call,
    unauthorized,
)
from tests.fakes.codex_quota import Quota, Window
from tests.fakes.identities import CLIENT_ID, Identity, IdentityRegistry, TokenSet, TokenState
from tests.fakes.kilo import (
    ChatReply,
    FakeKilo,
    KiloHttpReply,
    chat_text,
    chat_tool_call,
    kilo_rate_limited,
    model_entry,
    openrouter_error,
    payment_required,
    run_fake_kilo,
    service_unavailable,
)
from tests.fakes.oauth import Denial, FakeOAuth, check_authorize_query, pkce_challenge, run_fake_oauth
from tests.fakes.responses_stream import (
    Completed,
    Eof,
    Failed,
    FunctionCall,
    Incomplete,
    Message,
    Reasoning,
    StreamError,
    Usage,
)
from tests.fakes.server import FakeServer, RecordedRequest


@dataclass(frozen=True)
class FakeUpstreams:
    """The three fakes, sharing :attr:`registry`: tokens the issuer mints work on the Codex fake."""

    registry: IdentityRegistry
    codex: FakeCodex
    oauth: FakeOAuth
    kilo: FakeKilo

    def env(self) -> dict[str, str]:
        """The gateway's environment pointing at the fakes."""
        return {
            "RELAYGATE_CODEX_BASE_URL": self.codex.base_url,
            "RELAYGATE_OAUTH_ISSUER": self.oauth.base_url,
            "RELAYGATE_KILO_BASE_URL": self.kilo.base_url,
        }


def linked_fakes() -> FakeUpstreams:
    registry = IdentityRegistry()
    return FakeUpstreams(registry, FakeCodex(registry), FakeOAuth(registry), FakeKilo())


@asynccontextmanager
async def run_fake_upstreams() -> AsyncIterator[FakeUpstreams]:
    """Start all three fakes in the running loop, linked."""
    up = linked_fakes()
    async with up.codex, up.oauth, up.kilo:
        yield up


@contextmanager
def fake_upstreams_in_thread() -> Iterator[FakeUpstreams]:
    """Start all three fakes in background threads (for sync tests), linked."""
    up = linked_fakes()
    with ExitStack() as stack:
        for fake in (up.codex, up.oauth, up.kilo):
            stack.enter_context(fake.in_thread())
        yield up


__all__ = [
    "CLIENT_ID",
    "Account",
    "ChatContent",
    "ChatReply",
    "ChatToolCall",
    "ChatUsage",
    "Completed",
    "Denial",
    "Eof",
    "Failed",
    "FakeCodex",
    "FakeKilo",
    "FakeOAuth",
    "FakeServer",
    "FakeUpstreams",
    "FixtureReply",
    "FunctionCall",
    "HttpReply",
    "Identity",
    "IdentityRegistry",
    "Incomplete",
    "KiloHttpReply",
    "Message",
    "Quota",
    "Reasoning",
    "RecordedRequest",
    "StreamError",
    "StreamReply",
    "TokenSet",
    "TokenState",
    "Usage",
    "UsageLimitReached",
    "Window",
    "bad_request",
    "chat_text",
    "chat_tool_call",
    "check_authorize_query",
    "cut",
    "failed",
    "fake_upstreams_in_thread",
    "incomplete",
    "kilo_rate_limited",
    "linked_fakes",
    "model_entry",
    "model_info",
    "openrouter_error",
    "overloaded",
    "payment_required",
    "pkce_challenge",
    "rate_limited",
    "reasoning_text",
    "run_fake_codex",
    "run_fake_kilo",
    "run_fake_oauth",
    "run_fake_upstreams",
    "server_error",
    "service_unavailable",
    "stream_error",
    "text",
    "tool_call",
    "unauthorized",
]
