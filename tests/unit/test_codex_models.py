"""The model catalog: the Codex ModelsResponse parsed, cached per account, a fallback when needed,
and efforts mapped onto what a model accepts."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from gateway_core.errors import AuthenticationError, UpstreamError
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.models import (
    ASSUMED_EFFORTS,
    FAILURE_TTL,
    FALLBACK_MODELS,
    CodexModel,
    ModelCatalog,
    nearest_effort,
    parse_models,
    supported_efforts,
)
from tests.codex_lease_pool import FakeLease
from tests.fakes import model_info
from tests.fixtures import load_http

pytestmark = pytest.mark.anyio

A = FakeLease("a@example.com", "acct-a", "token-a")
B = FakeLease("b@example.com", "acct-b", "token-b")


# --- parsing ---------------------------------------------------------------------------------------------


def test_a_models_response_is_parsed_into_catalog_entries() -> None:
    payload = {"models": [model_info("gpt-5.5", context_window=272_000, efforts=("low", "high"), priority=2)]}

    (model,) = parse_models(payload)

    assert model == CodexModel(
        slug="gpt-5.5",
        display_name="gpt-5.5",
        context_window=272_000,
        efforts=("low", "high"),
        default_effort="medium",
        listed=True,
        priority=2,
    )
    assert model.info().model_dump(exclude_none=True) == {
        "id": "gpt-5.5",
        "provider": "codex",
        "display_name": "gpt-5.5",
        "context_window": 272_000,
    }


def test_hidden_models_are_kept_for_requests_but_not_listed() -> None:
    (model,) = parse_models({"models": [model_info("codex-auto-review", visibility="hide")]})

    assert model.listed is False


@pytest.mark.parametrize(
    "payload",
    [None, [], {"models": None}, {"models": "gpt-5.5"}, {"data": [{"id": "gpt-5.5"}]}],
)
def test_a_payload_without_a_model_list_gives_no_models(payload: Any) -> None:
    assert parse_models(payload) == []


def test_malformed_entries_are_skipped_and_unknown_fields_ignored() -> None:
    payload = {
        "models": [
            {"display_name": "no slug"},
            "gpt-5.5",
            {"slug": "gpt-5.4", "context_window": "big", "supported_reasoning_levels": ["low", 3], "x": 1},
        ]
    }

    (model,) = parse_models(payload)

    assert (model.slug, model.context_window, model.efforts) == ("gpt-5.4", None, ("low",))


# --- efforts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "supported", "expected"),
    [
        ("none", ("low", "medium", "high", "xhigh"), "low"),
        ("minimal", ("low", "medium", "high"), "low"),
        ("none", ("none", "low", "medium"), "none"),
        ("xhigh", ("low", "medium", "high"), "high"),
        ("xhigh", ("low", "medium", "high", "xhigh"), "xhigh"),
        ("medium", ("low", "high"), "low"),
        ("high", ("low", "medium"), "medium"),
        ("xhigh", ("high", "max"), "high"),
        ("medium", (), "medium"),
        ("medium", ("ultra",), "medium"),
    ],
)
def test_an_effort_becomes_the_nearest_the_model_accepts(
    effort: str, supported: tuple[str, ...], expected: str
) -> None:
    assert nearest_effort(effort, supported) == expected


def test_a_model_without_listed_efforts_is_assumed_to_take_the_codex_catalog_ones() -> None:
    assert supported_efforts(None) == ASSUMED_EFFORTS
    assert supported_efforts(CodexModel("gpt-9")) == ASSUMED_EFFORTS
    assert supported_efforts(CodexModel("gpt-9", efforts=("none", "low"))) == ("none", "low")


def test_the_fallback_list_is_current_and_complete() -> None:
    slugs = [model.slug for model in FALLBACK_MODELS]

    assert slugs[:3] == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini"]
    assert all(model.context_window and model.efforts for model in FALLBACK_MODELS)


# --- the cache -------------------------------------------------------------------------------------------


class Backend:
    """A mock ``/codex/models`` endpoint with a settable answer, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.answer: httpx.Response = httpx.Response(200, json={"models": [model_info("gpt-5.5")]})
        self.delay = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.delay:
            await anyio.sleep(self.delay)
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def catalog_over(backend: Backend, clock: Clock, *, ttl: float = 600.0) -> ModelCatalog:
    http = httpx.AsyncClient(transport=httpx.MockTransport(backend.handle))
    settings = CodexSettings(base_url="https://backend.test/backend-api", models_ttl=ttl)
    return ModelCatalog(settings, http, clock=clock)


async def test_the_list_is_asked_with_the_client_version_and_the_accounts_credentials() -> None:
    backend = Backend()
    catalog = catalog_over(backend, Clock())

    await catalog.catalog(A)

    (call,) = backend.calls
    assert call.url.path == "/backend-api/codex/models"
    assert call.url.params["client_version"] == CodexSettings().client_version
    assert call.headers["authorization"] == "Bearer token-a"
    assert call.headers["chatgpt-account-id"] == "acct-a"
    assert call.headers["originator"] == "codex_cli_rs"


async def test_an_accounts_list_is_reused_until_it_expires() -> None:
    backend, clock = Backend(), Clock()
    catalog = catalog_over(backend, clock, ttl=600)

    await catalog.catalog(A)
    clock.now += 599
    await catalog.catalog(A)
    assert len(backend.calls) == 1

    clock.now += 2
    await catalog.catalog(A)
    assert len(backend.calls) == 2


async def test_each_account_has_its_own_list() -> None:
    backend = Backend()
    catalog = catalog_over(backend, Clock())

    await catalog.catalog(A)
    await catalog.catalog(B)

    assert [call.headers["chatgpt-account-id"] for call in backend.calls] == ["acct-a", "acct-b"]


async def test_concurrent_requests_of_a_cold_account_fetch_once() -> None:
    backend = Backend()
    backend.delay = 0.05
    catalog = catalog_over(backend, Clock())

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(catalog.catalog, A)

    assert len(backend.calls) == 1


async def test_a_failed_fetch_serves_the_fallback_and_asks_again_a_minute_later() -> None:
    backend, clock = Backend(), Clock()
    backend.answer = httpx.Response(503, json={"error": {"code": "server_is_overloaded"}})
    catalog = catalog_over(backend, clock)

    first = await catalog.catalog(A)
    clock.now += FAILURE_TTL - 1
    await catalog.catalog(A)
    backend.answer = httpx.Response(200, json={"models": [model_info("gpt-6")]})
    clock.now += 2
    second = await catalog.catalog(A)

    assert first.fallback
    assert [m.slug for m in first.models] == [m.slug for m in FALLBACK_MODELS]
    assert [m.slug for m in second.models] == ["gpt-6"]
    assert len(backend.calls) == 2


async def test_an_empty_list_is_treated_as_a_failure() -> None:
    backend = Backend()
    backend.answer = httpx.Response(200, json={"models": []})

    assert (await catalog_over(backend, Clock()).catalog(A)).fallback


async def test_only_real_lists_are_offered_as_cached() -> None:
    backend = Backend()
    catalog = catalog_over(backend, Clock())
    assert catalog.cached() is None

    backend.answer = httpx.Response(500)
    await catalog.catalog(A)
    assert catalog.cached() is None

    backend.answer = httpx.Response(200, json={"models": [model_info("gpt-5.5")]})
    await catalog.catalog(B)
    cached = catalog.cached()
    assert cached is not None
    assert [m.slug for m in cached.models] == ["gpt-5.5"]


async def test_listing_for_an_account_reports_a_refusal() -> None:
    backend = Backend()
    status, headers, body = load_http("codex/codex_401_unauthorized.http")
    backend.answer = httpx.Response(status, headers=headers, content=body)

    with pytest.raises(AuthenticationError):
        await catalog_over(backend, Clock()).model_infos(A)


async def test_listing_for_an_account_reports_an_unreachable_backend() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    catalog = ModelCatalog(CodexSettings(base_url="https://backend.test/backend-api"), http)

    with pytest.raises(UpstreamError):
        await catalog.model_infos(A)
    assert (await catalog.catalog(A)).fallback


async def test_listing_for_an_account_gives_every_model_it_may_use() -> None:
    backend = Backend()
    backend.answer = httpx.Response(
        200, json={"models": [model_info("gpt-5.5"), model_info("codex-auto-review", visibility="hide")]}
    )

    infos = await catalog_over(backend, Clock()).model_infos(A)

    assert [info.id for info in infos] == ["gpt-5.5", "codex-auto-review"]
