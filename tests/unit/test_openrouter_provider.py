"""The ``kilo`` provider's parts without a server: settings, headers, the free-model list and its cache,
the token estimate, and the events of a whole-body answer. The HTTP client is an ``httpx.MockTransport``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from gateway_core.errors import UpstreamError, UpstreamTimeoutError
from gateway_core.formats import openai_chat
from gateway_core.models import (
    Base64Source,
    ImagePart,
    Message,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    Tool,
    ToolCallPart,
    Usage,
)
from gateway_core.settings import Settings
from gateway_core.streaming import accumulate
from gateway_providers._tokenizer import ATTACHMENT_TOKENS
from gateway_providers.openrouter.config import DEFAULT_BASE_URL, OpenRouterSettings
from gateway_providers.openrouter.models import (
    FAILURE_TTL,
    FALLBACK_MODELS,
    FreeModelCatalog,
    is_free_entry,
    parse_models,
)
from gateway_providers.openrouter.provider import response_events
from gateway_providers.openrouter.tokens import countable, estimate_body_tokens
from gateway_providers.openrouter.transport import (
    base_headers,
    chat_headers,
    create_http_client,
    read_whole_body,
)
from tests.fixtures import fixture_path, load_json
from tests.unit._bodies import Body

# --- settings ------------------------------------------------------------------------------------------


def test_defaults_point_at_kilos_gateway_without_a_key() -> None:
    settings = OpenRouterSettings.from_settings(Settings())

    assert settings.base_url == DEFAULT_BASE_URL == "https://api.kilo.ai/api/gateway"
    assert settings.chat_url == "https://api.kilo.ai/api/gateway/chat/completions"
    assert settings.models_url == "https://api.kilo.ai/api/gateway/models"
    assert settings.api_key is None


def test_the_base_url_loses_its_trailing_slash() -> None:
    settings = OpenRouterSettings.from_settings(
        Settings({"RELAYGATE_KILO_BASE_URL": "https://openrouter.ai/api/v1/"})
    )

    assert settings.chat_url == "https://openrouter.ai/api/v1/chat/completions"
    assert settings.host == "openrouter.ai"


def test_timeouts_are_read_from_their_variables() -> None:
    settings = OpenRouterSettings.from_settings(
        Settings(
            {
                "RELAYGATE_KILO_CONNECT_TIMEOUT": "3",
                "RELAYGATE_KILO_FIRST_EVENT_TIMEOUT": "15.5",
                "RELAYGATE_KILO_IDLE_TIMEOUT": "45",
                "RELAYGATE_KILO_MODELS_TTL": "30",
            }
        )
    )

    assert (settings.connect_timeout, settings.first_event_timeout, settings.idle_timeout) == (3, 15.5, 45)
    assert settings.models_ttl == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAYGATE_KILO_BASE_URL", "api.kilo.ai/api/gateway"),
        ("RELAYGATE_KILO_BASE_URL", "https://api.kilo.ai/api/gateway?x=1"),
        ("RELAYGATE_KILO_IDLE_TIMEOUT", "-1"),
        ("RELAYGATE_KILO_FIRST_EVENT_TIMEOUT", "soon"),
        ("RELAYGATE_KILO_MODELS_TTL", "inf"),
    ],
)
def test_an_invalid_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        OpenRouterSettings.from_settings(Settings({name: value}))


def test_a_whole_answer_may_take_the_first_event_and_the_idle_timeouts() -> None:
    settings = OpenRouterSettings(first_event_timeout=60, idle_timeout=120)

    assert settings.whole_answer_timeout == 180


@pytest.mark.anyio
async def test_the_clients_read_backstop_outlasts_a_whole_answer() -> None:
    settings = OpenRouterSettings(connect_timeout=3, first_event_timeout=20, idle_timeout=45)
    http = create_http_client(settings)

    assert http.timeout.read == http.timeout.write == 65
    assert (http.timeout.connect, http.timeout.pool) == (3, 20)
    await http.aclose()


def test_a_key_that_could_split_a_header_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="RELAYGATE_HAIKU_API_KEY") as caught:
        OpenRouterSettings.from_settings(Settings({"RELAYGATE_HAIKU_API_KEY": "sk-or-v1-abc\r\nx-evil: 1"}))

    assert "sk-or-v1-abc" not in str(caught.value)


def test_the_key_never_appears_in_the_settings_repr() -> None:
    settings = OpenRouterSettings.from_settings(Settings({"RELAYGATE_HAIKU_API_KEY": "sk-or-v1-secret"}))

    assert settings.api_key == "sk-or-v1-secret"
    assert "sk-or-v1-secret" not in repr(settings)


# --- headers -------------------------------------------------------------------------------------------


def test_without_a_key_no_authorization_is_sent() -> None:
    headers = chat_headers(OpenRouterSettings())

    assert "authorization" not in headers
    assert headers["accept"] == "text/event-stream"
    assert headers["x-title"] == "relaygate"


def test_a_whole_answer_is_asked_for_as_json() -> None:
    headers = chat_headers(OpenRouterSettings(), stream=False)

    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"


def test_the_key_is_sent_as_a_bearer() -> None:
    headers = base_headers(OpenRouterSettings(api_key="sk-or-v1-k"))

    assert headers["authorization"] == "Bearer sk-or-v1-k"


# --- the free-model list ---------------------------------------------------------------------------------


def entry(
    model_id: str, prompt: object = "0.000001", completion: object = "0.000002", **extra: Any
) -> dict[str, Any]:
    return {"id": model_id, "pricing": {"prompt": prompt, "completion": completion}, **extra}


def test_free_ids_and_zero_priced_models_are_free() -> None:
    assert is_free_entry(entry("moonshotai/kimi-k2.5:free"))
    assert is_free_entry(entry("kilo/stealth", "0", "0"))
    assert is_free_entry(entry("kilo/numeric", 0, 0.0))


def test_paid_routed_and_unpriced_models_are_not_free() -> None:
    assert not is_free_entry(entry("moonshotai/kimi-k2.5"))
    assert not is_free_entry(entry("kilo/half", "0", "0.000002"))
    assert not is_free_entry(entry("openrouter/auto", "-1", "-1"))  # a router's variable price
    assert not is_free_entry({"id": "vendor/no-pricing"})
    assert not is_free_entry(entry("vendor/garbage", "free", "free"))


def test_the_list_keeps_free_models_in_order_with_their_details() -> None:
    payload = {
        "data": [
            entry(
                "moonshotai/kimi-k2.5:free",
                name="MoonshotAI: Kimi K2.5 (free)",
                context_length=262_144,
                created=1769472000,
                top_provider={"max_completion_tokens": 65_536},
            ),
            entry("openai/gpt-5-mini"),
            entry("minimax/minimax-m2.5:free", top_provider={"context_length": 196_608}),
        ]
    }

    kimi, minimax = parse_models(payload)

    assert (kimi.id, kimi.name, kimi.context_window, kimi.max_output_tokens) == (
        "moonshotai/kimi-k2.5:free",
        "MoonshotAI: Kimi K2.5 (free)",
        262_144,
        65_536,
    )
    assert kimi.created_at == "2026-01-27T00:00:00Z"
    assert (minimax.id, minimax.context_window) == ("minimax/minimax-m2.5:free", 196_608)
    info = kimi.info("kilo")
    assert (info.id, info.provider, info.display_name) == (kimi.id, "kilo", kimi.name)


def test_malformed_entries_and_duplicates_are_skipped() -> None:
    payload = {"data": ["text", {"id": 3}, {"id": ""}, entry("a/b:free"), entry("a/b:free"), None]}

    assert [model.id for model in parse_models(payload)] == ["a/b:free"]
    assert parse_models({"error": "Invalid path"}) == []
    assert parse_models(None) == []


def test_the_fallback_starts_with_the_haiku_lane_aliases() -> None:
    assert [model.id for model in FALLBACK_MODELS[:2]] == [
        "moonshotai/kimi-k2.5:free",
        "minimax/minimax-m2.5:free",
    ]
    assert all(model.id.endswith(":free") for model in FALLBACK_MODELS)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def catalog_with(
    handler: Callable[[httpx.Request], httpx.Response], clock: Clock, *, ttl: float = 600.0
) -> FreeModelCatalog:
    settings = OpenRouterSettings(base_url="http://kilo.test/api/gateway", models_ttl=ttl)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return FreeModelCatalog(settings, http, clock=clock)


LISTED = {"data": [entry("moonshotai/kimi-k2.5:free"), entry("vendor/zero", "0", "0"), entry("vendor/paid")]}


@pytest.mark.anyio
async def test_the_list_is_fetched_once_per_ttl() -> None:
    clock, calls = Clock(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=LISTED)

    catalog = catalog_with(handler, clock, ttl=600)
    first = await catalog.models()
    clock.now += 599
    await catalog.models()
    assert len(calls) == 1
    clock.now += 2
    await catalog.models()

    assert len(calls) == 2
    assert [model.id for model in first] == ["moonshotai/kimi-k2.5:free", "vendor/zero"]
    assert str(calls[0].url) == "http://kilo.test/api/gateway/models"


@pytest.mark.anyio
async def test_concurrent_listings_with_a_cold_cache_fetch_once() -> None:
    calls: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await anyio.sleep(0.05)
        return httpx.Response(200, json=LISTED)

    settings = OpenRouterSettings(base_url="http://kilo.test/api/gateway")
    catalog = FreeModelCatalog(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(catalog.models)

    assert len(calls) == 1


@pytest.mark.anyio
async def test_a_failed_fetch_serves_the_fallback_and_asks_again_after_a_minute() -> None:
    clock, calls = Clock(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=LISTED)

    catalog = catalog_with(handler, clock)
    assert await catalog.models() == FALLBACK_MODELS
    assert catalog.fallback
    clock.now += FAILURE_TTL - 1
    await catalog.models()
    assert len(calls) == 1
    clock.now += 2

    assert [model.id for model in await catalog.models()] == ["moonshotai/kimi-k2.5:free", "vendor/zero"]
    assert not catalog.fallback


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, json={"error": "Service Unavailable", "message": "down"}),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"data": [entry("vendor/paid")]}),
    ],
    ids=["error", "garbage", "no-free-model"],
)
async def test_a_useless_answer_serves_the_fallback(answer: httpx.Response) -> None:
    catalog = catalog_with(lambda request: answer, Clock())

    assert await catalog.models() == FALLBACK_MODELS


@pytest.mark.anyio
async def test_is_free_knows_free_ids_without_asking_and_others_from_the_list() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=LISTED)

    catalog = catalog_with(handler, Clock())
    assert await catalog.is_free("anything/at-all:free")
    assert calls == []
    assert await catalog.is_free("vendor/zero")
    assert not await catalog.is_free("vendor/paid")
    assert len(calls) == 1


# --- the token estimate ------------------------------------------------------------------------------


def chat_body(request: Request) -> dict[str, Any]:
    return openai_chat.render_request(request, upstream_model="moonshotai/kimi-k2.5:free", provider="kilo")


def hello(*parts: TextPart | ImagePart, tools: tuple[Tool, ...] = ()) -> Request:
    return Request(model="claude-haiku-4-5", messages=(Message(role="user", content=parts),), tools=tools)


@pytest.mark.anyio
async def test_tools_add_to_the_estimate() -> None:
    tool = Tool(name="Read", description="Read a file from the local disk", input_schema={"type": "object"})

    bare = await estimate_body_tokens(chat_body(hello(TextPart(text="hi"))))
    with_tool = await estimate_body_tokens(chat_body(hello(TextPart(text="hi"), tools=(tool,))))

    assert 0 < bare < with_tool


@pytest.mark.anyio
async def test_an_image_counts_a_fixed_estimate_not_its_base64() -> None:
    image = ImagePart(source=Base64Source(media_type="image/png", data="A" * 400_000))
    body = chat_body(hello(TextPart(text="what is this?"), image))

    texts, estimated = countable(body)
    tokens = await estimate_body_tokens(body)

    assert estimated == ATTACHMENT_TOKENS
    assert "AAAA" not in "".join(texts)
    assert ATTACHMENT_TOKENS < tokens < ATTACHMENT_TOKENS + 100


@pytest.mark.anyio
async def test_a_large_claude_code_request_is_estimated_in_the_thousands() -> None:
    from gateway_core.formats import anthropic

    request = anthropic.parse_request(
        load_json("claude_code/cc332_haiku_budget_thinking_request.json")["body"]
    )

    tokens = await estimate_body_tokens(chat_body(request))

    # 92 kB of JSON: roughly one token per 3-5 characters of English and schema text.
    assert 15_000 < tokens < 35_000


# --- a whole-body answer as events ---------------------------------------------------------------------


def test_a_whole_response_replays_as_events_that_accumulate_to_it() -> None:
    response = Response(
        id="gen-1",
        model="claude-haiku-4-5",
        content=(
            ReasoningPart(text="Look first.", signature='[{"type":"reasoning.text"}]', provider="kilo"),
            TextPart(text="Reading it."),
            ToolCallPart(id="functions.Read:0", name="Read", arguments={"file_path": "/tmp/x"}),
        ),
        stop_reason="tool_use",
        usage=Usage(input_tokens=10, output_tokens=5, cost=0.001),
    )

    assert accumulate(response_events(response)) == response


def test_a_recorded_openrouter_body_replays_as_events_that_accumulate_to_it() -> None:
    recorded = load_json("openrouter/openrouter_completion_simple_kimi_k2.5.response.json")
    response = openai_chat.parse_response(recorded, provider="kilo", model="claude-haiku-4-5")

    assert accumulate(response_events(response)) == response


# --- reading a non-streamed answer whole ------------------------------------------------------------------

SIMPLE = "openrouter/openrouter_completion_simple_kimi_k2.5.response.json"
PADDED = fixture_path(SIMPLE).read_bytes().split(b"\n", 1)[1]
"""A recorded non-streamed answer as it came off the wire: OpenRouter's keep-alive whitespace, then JSON
(the fixture without its provenance line)."""


async def read_answer(body: Body, *, seconds: float = 5, limit: int = 1 << 20) -> bytes:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, stream=body)))
    response = await http.send(http.build_request("POST", "http://kilo.test/chat/completions"), stream=True)
    try:
        return await read_whole_body(
            response, anyio.current_time() + seconds, limit=limit, host="api.kilo.ai"
        )
    finally:
        await response.aclose()


@pytest.mark.anyio
async def test_a_whole_body_is_read_across_its_chunks() -> None:
    chunks = [PADDED[start : start + 100] for start in range(0, len(PADDED), 100)]

    assert await read_answer(Body(chunks)) == PADDED


@pytest.mark.anyio
async def test_a_body_read_whole_closes_its_response() -> None:
    body = Body([PADDED])
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, stream=body)))
    response = await http.send(http.build_request("POST", "http://kilo.test/chat/completions"), stream=True)

    raw = await read_whole_body(response, anyio.current_time() + 5, limit=1 << 20, host="api.kilo.ai")

    assert raw == PADDED
    assert response.is_closed
    assert body.closed, "the connection goes back at once"


@pytest.mark.anyio
async def test_a_body_that_stalls_before_its_end_is_a_timeout_not_a_part() -> None:
    with pytest.raises(UpstreamTimeoutError, match=r"^api\.kilo\.ai did not finish its answer in time$"):
        await read_answer(Body([PADDED[:200]], then="stall"), seconds=0.05)


@pytest.mark.anyio
async def test_a_body_cut_by_a_broken_connection_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match=r"^reading the answer: could not reach api\.kilo\.ai"):
        await read_answer(Body([PADDED[:200]], then="break"))


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_refused() -> None:
    with pytest.raises(UpstreamError, match="larger than 1000 bytes"):
        await read_answer(Body([PADDED]), limit=1000)


def test_the_recorded_padded_body_parses_as_its_json() -> None:
    parsed = openai_chat.parse_response_bytes(PADDED, provider="kilo", model="claude-haiku-4-5")

    assert PADDED[:1].isspace(), "the recording keeps the padding"
    assert parsed == openai_chat.parse_response(load_json(SIMPLE), provider="kilo", model="claude-haiku-4-5")


@pytest.mark.parametrize("padding", [b"\r\n\t \r\n", b" " * 8192], ids=["crlf-tab", "long"])
def test_other_keep_alive_whitespace_is_skipped_too(padding: bytes) -> None:
    def parse(raw: bytes) -> Response:
        return openai_chat.parse_response_bytes(raw, provider="kilo", model="claude-haiku-4-5")

    assert parse(padding + PADDED.lstrip()) == parse(PADDED)
