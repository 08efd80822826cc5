"""Importing the Codex CLI's ``auth.json``: both layouts, and clear errors for what cannot be imported."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway_core.errors import InvalidRequestError, NotFoundError
from gateway_providers.codex.credentials import parse_auth_json, read_auth_json
from tests.fakes.jwt import encode_jwt
from tests.fixtures import fixture_path, load_json

AUTH = "https://api.openai.com/auth"


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "auth.json"
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    return path


def test_current_layout_is_imported_with_its_account_id(tmp_path: Path) -> None:
    login = read_auth_json(write(tmp_path, load_json("oauth/auth_json_chatgpt.json")))

    assert login.email == "user@example.com"
    assert login.account_id == "12345678-0000-0000-0000-000000000000"
    assert login.plan_type == "pro"
    assert login.tokens.access_token == "access-123"
    assert login.tokens.refresh_token == "refresh-123"
    assert login.tokens.id_token is not None
    assert login.last_refresh == datetime(2025, 9, 15, 10, 20, 30, 123456, tzinfo=UTC)


def test_the_fixture_file_is_read_as_it_is_on_disk() -> None:
    # The fixture carries a provenance line, so parse its payload the way the loader does.
    raw = fixture_path("oauth/auth_json_chatgpt.json").read_bytes().split(b"\n", 1)[1]

    assert parse_auth_json(raw).email == "user@example.com"


def test_legacy_layout_without_auth_mode_and_account_id_is_imported(tmp_path: Path) -> None:
    login = read_auth_json(write(tmp_path, load_json("oauth/auth_json_legacy.json")))

    assert login.email == "user@example.com"
    assert login.plan_type == "pro"
    assert login.tokens.access_token == "at-123"
    assert login.tokens.refresh_token == "rt-123"
    # The recorded legacy id_token names no account: none is invented.
    assert login.account_id is None
    assert login.last_refresh == datetime(2025, 1, 1, tzinfo=UTC)


def test_legacy_layout_takes_the_account_id_from_the_id_token(tmp_path: Path) -> None:
    data = load_json("oauth/auth_json_legacy.json")
    data["tokens"]["id_token"] = encode_jwt(
        {"email": "old@example.com", AUTH: {"chatgpt_account_id": "acc-old"}}
    )

    login = read_auth_json(write(tmp_path, data))

    assert login.email == "old@example.com"
    assert login.account_id == "acc-old"


def test_the_access_token_expiry_is_read_when_it_is_a_jwt(tmp_path: Path) -> None:
    data = load_json("oauth/auth_json_chatgpt.json")
    data["tokens"]["access_token"] = encode_jwt({"exp": 1_800_000_000})

    login = read_auth_json(write(tmp_path, data))

    assert login.access_expires_at == datetime.fromtimestamp(1_800_000_000, UTC)


def test_a_missing_file_is_a_404_naming_the_file_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        read_auth_json(tmp_path / "nope.json")

    assert str(tmp_path / "nope.json") in caught.value.message
    assert "RELAYGATE_CODEX_AUTH_FILE" in caught.value.message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="directory"):
        read_auth_json(tmp_path)


def test_invalid_json_is_a_400_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"tokens": ')

    with pytest.raises(InvalidRequestError) as caught:
        read_auth_json(path)

    assert str(path) in caught.value.message
    assert "not valid JSON" in caught.value.message


def test_an_api_key_only_file_is_refused_clearly(tmp_path: Path) -> None:
    path = write(tmp_path, {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-secret", "tokens": None})

    with pytest.raises(InvalidRequestError) as caught:
        read_auth_json(path)

    assert "API key" in caught.value.message
    assert "sk-secret" not in caught.value.message


def test_an_old_api_key_file_without_tokens_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="API key"):
        read_auth_json(write(tmp_path, {"OPENAI_API_KEY": "sk-x"}))


@pytest.mark.parametrize("content", [[], "text", {"tokens": "no"}, {}])
def test_files_without_tokens_are_refused(tmp_path: Path, content: Any) -> None:
    with pytest.raises(InvalidRequestError):
        read_auth_json(write(tmp_path, content))


def test_a_missing_refresh_token_is_named_and_no_token_is_quoted(tmp_path: Path) -> None:
    data = load_json("oauth/auth_json_chatgpt.json")
    del data["tokens"]["refresh_token"]

    with pytest.raises(InvalidRequestError) as caught:
        read_auth_json(write(tmp_path, data))

    assert "refresh_token" in caught.value.message
    assert "access-123" not in caught.value.message


def test_tokens_without_an_email_cannot_be_imported(tmp_path: Path) -> None:
    data = {"tokens": {"access_token": "a", "refresh_token": "r", "id_token": encode_jwt({AUTH: {}})}}

    with pytest.raises(InvalidRequestError, match="no email"):
        read_auth_json(write(tmp_path, data))


def test_the_imported_login_repr_hides_the_tokens(tmp_path: Path) -> None:
    login = read_auth_json(write(tmp_path, load_json("oauth/auth_json_chatgpt.json")))

    assert "refresh-123" not in repr(login)
    assert "access-123" not in repr(login)
