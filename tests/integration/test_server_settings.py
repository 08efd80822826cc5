"""The lane settings and Claude Code settings routes of the real server (DESIGN §4, §6, §6.1, §8).

Fake providers named ``codex`` and ``kilo`` come in through a plugin, as real ones do; every answer
names what served it in ``x-relaygate-provider`` / ``x-relaygate-model``, which is how these tests see
where a setting sent the next request. State lives in a SQLite store in a temporary home, so a
restart on the same home is a real restart.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway_core.errors import UpstreamError
from tests.lanes_support import routed, served
from tests.unit._fake_provider import FakeProvider

ORIGINAL = b'{\n  "model": "opus",\n  "env": {"ANTHROPIC_AUTH_TOKEN": "sk-ant-oat", "KEEP": "me"}\n}'


def refusal(answer: httpx.Response, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    message: str = body["error"]
    return message


# --- haiku-model --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_haiku_model_defaults_to_kimi(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.get("/settings/haiku-model")
    assert answer.status_code == 200
    assert answer.json() == {"success": True, "haikuKiloModel": "kimi-k2.5"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "upstream"),
    [
        ("minimax-2.5", "minimax/minimax-m2.5:free"),
        ("kimi-k2.5", "moonshotai/kimi-k2.5:free"),
        ("z-ai/glm-4.6:free", "z-ai/glm-4.6:free"),
    ],
)
async def test_setting_the_haiku_model_changes_the_next_request(
    tmp_path: Path, value: str, upstream: str
) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.post("/settings/haiku-model", json={"haikuKiloModel": value})
        assert answer.status_code == 200
        body = answer.json()
        assert (body["success"], body["haikuKiloModel"], body["model"]) == (True, value, upstream)
        assert isinstance(body["message"], str)

        assert (await server.http.get("/settings/haiku-model")).json() == {
            "success": True,
            "haikuKiloModel": value,
        }
        assert await routed(server.http) == ("kilo", upstream)


@pytest.mark.anyio
async def test_the_haiku_model_is_kept_across_a_restart(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        await server.http.post("/settings/haiku-model", json={"haikuKiloModel": "minimax-2.5"})

    async with served(tmp_path) as server:
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "minimax-2.5"
        assert await routed(server.http) == ("kilo", "minimax/minimax-m2.5:free")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "haikuKiloModel: required"),
        ({"haikuKiloModel": ""}, "haikuKiloModel: must not be empty"),
        ({"haikuKiloModel": "   "}, "haikuKiloModel: must not be empty"),
        ({"haikuKiloModel": 42}, "haikuKiloModel: expected a string"),
        ({"haikuKiloModel": ["kimi-k2.5"]}, "haikuKiloModel: expected a string"),
        ({"haikuKiloModel": "gpt-5.5"}, "haikuKiloModel: 'gpt-5.5' is not a model id"),
        ({"haikuKiloModel": "vendor/has space"}, "haikuKiloModel:"),
        ({"haikuKiloModel": "kimi-k2.5\n"}, None),
    ],
)
async def test_a_bad_haiku_model_is_refused_and_changes_nothing(
    tmp_path: Path, body: dict[str, Any], says: str | None
) -> None:
    async with served(tmp_path) as server:
        await server.http.post("/settings/haiku-model", json={"haikuKiloModel": "minimax-2.5"})

        answer = await server.http.post("/settings/haiku-model", json=body)

        if says is None:  # surrounding whitespace is trimmed, not refused
            assert answer.status_code == 200
            return
        assert says in refusal(answer)
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "minimax-2.5"
        assert await routed(server.http) == ("kilo", "minimax/minimax-m2.5:free")


@pytest.mark.anyio
@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
async def test_a_malformed_body_is_a_400(tmp_path: Path, raw: bytes) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.post(
            "/settings/haiku-model", content=raw, headers={"content-type": "application/json"}
        )
        assert refusal(answer)
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "kimi-k2.5"


# --- the lane off, or failing -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_with_the_haiku_lane_off_haiku_goes_to_codex(tmp_path: Path) -> None:
    async with served(tmp_path, env={"RELAYGATE_HAIKU_LANE": "off"}) as server:
        assert await routed(server.http) == ("codex", "gpt-5.4-mini")
        answer = await server.http.post("/settings/haiku-model", json={"haikuKiloModel": "minimax-2.5"})
        assert "the Haiku lane is off" in answer.json()["message"]
        assert await routed(server.http) == ("codex", "gpt-5.4-mini")
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "minimax-2.5"


@pytest.mark.anyio
async def test_a_failing_haiku_lane_falls_back_to_codex(tmp_path: Path) -> None:
    kilo = FakeProvider("kilo", fail=UpstreamError("kilo is down"))
    async with served(tmp_path, FakeProvider("codex"), kilo) as server:
        assert await routed(server.http) == ("codex", "gpt-5.4-mini")


# --- haiku-models -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_haiku_models_come_from_the_haiku_lane_provider(tmp_path: Path) -> None:
    kilo = FakeProvider("kilo", models=["moonshotai/kimi-k2.5:free", "z-ai/glm-4.6:free"])
    async with served(tmp_path, FakeProvider("codex"), kilo) as server:
        body = (await server.http.get("/settings/haiku-models")).json()
    assert body["success"] is True
    assert body["models"] == [{"id": "moonshotai/kimi-k2.5:free"}, {"id": "z-ai/glm-4.6:free"}]
    assert body["source"] == "provider"
    assert body["current"] == "kimi-k2.5"
    assert body["aliases"] == {
        "kimi-k2.5": "moonshotai/kimi-k2.5:free",
        "minimax-2.5": "minimax/minimax-m2.5:free",
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "providers",
    [
        (FakeProvider("codex"),),
        (FakeProvider("codex"), FakeProvider("kilo", models_error=UpstreamError("offline"))),
    ],
    ids=["no-kilo", "kilo-offline"],
)
async def test_haiku_models_fall_back_to_the_aliases(
    tmp_path: Path, providers: tuple[FakeProvider, ...]
) -> None:
    async with served(tmp_path, *providers) as server:
        body = (await server.http.get("/settings/haiku-models")).json()
    assert body["source"] == "builtin"
    assert [model["id"] for model in body["models"]] == [
        "moonshotai/kimi-k2.5:free",
        "minimax/minimax-m2.5:free",
    ]


# --- model-map ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_model_map_shows_the_default_lanes(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        body = (await server.http.get("/settings/model-map")).json()
    assert body["success"] is True
    assert body["modelMap"] == {
        "opus": {"provider": "codex", "model": "gpt-5.5", "effort": "high"},
        "sonnet": {"provider": "codex", "model": "gpt-5.5", "effort": "medium"},
        "haiku": {
            "provider": "kilo",
            "model": "moonshotai/kimi-k2.5:free",
            "effort": None,
            "fallback": {"provider": "codex", "model": "gpt-5.4-mini", "effort": None},
        },
    }
    assert (body["haikuLane"], body["haikuKiloModel"], body["providers"]) == (
        True,
        "kimi-k2.5",
        ["codex", "kilo"],
    )


@pytest.mark.anyio
async def test_changing_a_lane_routes_the_next_request_and_survives_a_restart(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.post(
            "/settings/model-map", json={"opus": {"provider": "kilo", "model": "z-ai/glm-4.6:free"}}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["modelMap"]["opus"] == {
            "provider": "kilo",
            "model": "z-ai/glm-4.6:free",
            "effort": None,
        }
        assert await routed(server.http, "claude-opus-5-5") == ("kilo", "z-ai/glm-4.6:free")
        assert await routed(server.http, "claude-sonnet-4-5") == ("codex", "gpt-5.5"), "other lanes are kept"

    async with served(tmp_path) as server:
        assert await routed(server.http, "claude-opus-5-5") == ("kilo", "z-ai/glm-4.6:free")
        body = (await server.http.post("/settings/model-map", json={"opus": None})).json()
        assert body["modelMap"]["opus"] == {"provider": "codex", "model": "gpt-5.5", "effort": "high"}


@pytest.mark.anyio
async def test_a_lane_effort_reaches_the_provider(tmp_path: Path) -> None:
    codex = FakeProvider("codex")
    async with served(tmp_path, codex, FakeProvider("kilo")) as server:
        await server.http.post(
            "/settings/model-map",
            json={"modelMap": {"sonnet": {"provider": "codex", "model": "gpt-5.4", "effort": "low"}}},
        )
        assert await routed(server.http, "claude-sonnet-4-5") == ("codex", "gpt-5.4")
    assert codex.contexts[-1].effort == "low"


@pytest.mark.anyio
async def test_a_haiku_entry_on_kilo_is_the_haiku_kilo_model(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        await server.http.post("/settings/model-map", json={"haiku": "kilo/minimax-2.5"})
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "minimax-2.5"
        assert await routed(server.http) == ("kilo", "minimax/minimax-m2.5:free")


@pytest.mark.anyio
async def test_a_haiku_entry_elsewhere_replaces_the_haiku_lane_until_the_haiku_model_is_set(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as server:
        body = (
            await server.http.post(
                "/settings/model-map", json={"haiku": {"provider": "codex", "model": "gpt-5.5"}}
            )
        ).json()
        assert body["modelMap"]["haiku"] == {
            "provider": "codex",
            "model": "gpt-5.5",
            "effort": None,
            "fallback": None,
        }
        assert await routed(server.http) == ("codex", "gpt-5.5")

        await server.http.post("/settings/haiku-model", json={"haikuKiloModel": "kimi-k2.5"})
        assert await routed(server.http) == ("kilo", "moonshotai/kimi-k2.5:free")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"opus": {"provider": "nowhere", "model": "x"}}, 'opus.provider: unknown provider "nowhere"'),
        (
            {"opus": "nowhere/x"},
            'opus.provider: unknown provider "nowhere" (installed providers: codex, kilo)',
        ),
        (
            {"modelMap": {"opus": {"provider": "nowhere", "model": "x"}}},
            "modelMap.opus.provider: unknown provider",
        ),
        ({"opus": {"provider": "codex"}}, "opus.model: required field is missing"),
        ({"opus": {"provider": "codex", "model": ""}}, "opus.model: must not be empty"),
        (
            {"opus": {"provider": "codex", "model": "gpt-5.5", "effort": "extreme"}},
            "opus.effort: expected one of none",
        ),
        ({"opus": 5}, "opus: expected an object"),
        ({"opsu": {"provider": "codex", "model": "gpt-5.5"}}, "opsu: unknown lane"),
        ({"haiku": {"provider": "kilo", "model": "gpt-5.5"}}, "haiku.model: 'gpt-5.5' is not a model id"),
        ({"haiku": {"provider": "kilo", "model": "kimi-k2.5", "effort": "low"}}, "haiku.effort:"),
    ],
)
async def test_a_bad_model_map_is_refused_and_changes_nothing(
    tmp_path: Path, body: dict[str, Any], says: str
) -> None:
    async with served(tmp_path) as server:
        before = (await server.http.get("/settings/model-map")).json()
        # A valid lane beside the bad one is not applied either: the change is all or nothing.
        answer = await server.http.post(
            "/settings/model-map", json={"sonnet": {"provider": "kilo", "model": "a/b"}, **body}
        )
        assert says in refusal(answer)
        assert (await server.http.get("/settings/model-map")).json() == before
        assert await routed(server.http, "claude-sonnet-4-5") == ("codex", "gpt-5.5")


# --- Claude Code settings -----------------------------------------------------------------------------


def read_settings(path: Path) -> dict[str, Any]:
    content = orjson.loads(path.read_bytes())
    assert isinstance(content, dict)
    return content


def write_settings(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def raw(path: Path) -> bytes:
    return path.read_bytes()


def backups_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.anyio
async def test_proxy_writes_the_bound_address_and_the_lane_models(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.post("/claude/config/proxy")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["success"], body["path"], body["mode"]) == (True, str(server.claude_settings), "proxy")
        assert read_settings(server.claude_settings) == {
            "env": {
                "ANTHROPIC_BASE_URL": server.url,
                "ANTHROPIC_API_KEY": "relaygate",
                "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-5-5",
                "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-5",
                "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
            }
        }
        assert file_mode(server.claude_settings) == 0o600
        shown = (await server.http.get("/claude/config")).json()
        assert (shown["exists"], shown["mode"]) == (True, "proxy")
        for alias in ("claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5"):
            await routed(server.http, alias)  # every name written routes to a lane


@pytest.mark.anyio
async def test_proxy_writes_the_gateway_key_and_still_needs_it(tmp_path: Path) -> None:
    async with served(tmp_path, env={"RELAYGATE_API_KEY": "gw-secret"}) as server:
        assert (await server.http.post("/claude/config/proxy")).status_code == 401
        answer = await server.http.post("/claude/config/proxy", headers={"x-api-key": "gw-secret"})
        assert answer.status_code == 200
        assert answer.json()["config"]["env"]["ANTHROPIC_API_KEY"] == "***"
        assert read_settings(server.claude_settings)["env"]["ANTHROPIC_API_KEY"] == "gw-secret"


@pytest.mark.anyio
async def test_proxy_then_direct_restores_the_original_bytes(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        write_settings(server.claude_settings, ORIGINAL)
        proxied = await server.http.post("/claude/config/proxy")
        assert proxied.json()["backup"] is not None
        config = read_settings(server.claude_settings)
        assert config["model"] == "opus"
        assert config["env"]["KEEP"] == "me"
        assert "ANTHROPIC_AUTH_TOKEN" not in config["env"]

        direct = await server.http.post("/claude/config/direct")

        assert direct.status_code == 200
        assert direct.json()["mode"] == "direct"
        assert raw(server.claude_settings) == ORIGINAL
        backup, _proxied = backups_of(server.claude_settings)  # direct backs up the proxy file too
        assert re.fullmatch(r"settings\.json\.bak-\d{8}T\d{6}", backup.name)
        assert raw(backup) == ORIGINAL


@pytest.mark.anyio
async def test_direct_writes_an_api_key_only_when_given(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        await server.http.post("/claude/config/proxy")
        await server.http.post("/claude/config/direct", json={"apiKey": "sk-ant-mine"})
        assert read_settings(server.claude_settings) == {"env": {"ANTHROPIC_API_KEY": "sk-ant-mine"}}
        answer = await server.http.post("/claude/config/direct", json={"apiKey": 7})
        assert "apiKey: expected a string" in refusal(answer)


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["/claude/config/proxy", "/claude/config/direct"])
async def test_an_invalid_settings_file_is_a_409_and_stays_untouched(tmp_path: Path, route: str) -> None:
    async with served(tmp_path) as server:
        write_settings(server.claude_settings, b'{"env": {')

        answer = await server.http.post(route)

        assert "not valid JSON" in refusal(answer, 409)
        assert raw(server.claude_settings) == b'{"env": {'
        assert backups_of(server.claude_settings) == []
        shown = (await server.http.get("/claude/config")).json()
        assert (shown["success"], shown["valid"], shown["config"]) == (True, False, None)


@pytest.mark.anyio
async def test_a_cross_site_page_cannot_rewrite_claude_settings(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        answer = await server.http.post("/claude/config/proxy", headers={"origin": "https://evil.example"})
        assert refusal(answer, 403)
        assert not server.claude_settings.exists()
