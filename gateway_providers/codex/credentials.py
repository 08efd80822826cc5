"""Reading the Codex CLI's ``auth.json`` (``~/.codex/auth.json``, ``RELAYGATE_CODEX_AUTH_FILE``) so an
account the user already logged into with ``codex login`` can be imported (protocols §5).

Two layouts exist: the current one (``auth_mode``, ``tokens.account_id``) and the older one without
``auth_mode`` and possibly without ``account_id``, which then comes from the id_token. A file holding
only an API key has no ChatGPT login to import. Errors name the file and what is wrong with it, and
never quote a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from gateway_core.errors import InvalidRequestError, NotFoundError
from gateway_core.store import Tokens
from gateway_providers.codex.oauth import read_claims

MAX_FILE_SIZE: Final = 1 << 20
"""An ``auth.json`` is a few kilobytes; anything larger is not one."""


@dataclass(frozen=True, slots=True)
class ImportedLogin:
    """A ChatGPT login read from a credentials file. ``tokens`` masks itself in repr."""

    email: str
    account_id: str | None
    plan_type: str | None
    tokens: Tokens
    access_expires_at: datetime | None
    last_refresh: datetime | None


def default_auth_file() -> Path:
    """Where the Codex CLI writes its login (``$CODEX_HOME`` is the host's business, not ours)."""
    return Path.home() / ".codex" / "auth.json"


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_SIZE:
            raise InvalidRequestError(f"{path} is too large to be a Codex auth.json", param="path")
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"{path} does not exist: log in with the Codex CLI (`codex login`) first, or set "
            "RELAYGATE_CODEX_AUTH_FILE to its auth.json",
            param="path",
        ) from None
    except IsADirectoryError:
        raise InvalidRequestError(f"{path} is a directory, not a Codex auth.json", param="path") from None
    except PermissionError:
        raise InvalidRequestError(f"{path} cannot be read: permission denied", param="path") from None
    except OSError as exc:
        raise InvalidRequestError(f"{path} cannot be read: {exc.strerror or exc}", param="path") from None


def _timestamp(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _string(tokens: Mapping[str, Any], name: str) -> str | None:
    value = tokens.get(name)
    return value if isinstance(value, str) and value else None


def parse_auth_json(raw: bytes, *, source: str = "auth.json") -> ImportedLogin:
    """The ChatGPT login in the bytes of an ``auth.json``; ``source`` names the file in errors."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"{source} is not valid JSON: {exc.args[0]}"[:300], param="path") from None
    if not isinstance(data, Mapping):
        raise InvalidRequestError(f"{source} does not hold a JSON object", param="path")
    tokens = data.get("tokens")
    mode = data.get("auth_mode")
    if not isinstance(tokens, Mapping) or mode == "apikey":
        if data.get("OPENAI_API_KEY"):
            raise InvalidRequestError(
                f"{source} holds only an OpenAI API key, not a ChatGPT login: run `codex login` "
                "with ChatGPT, or add the account with POST /accounts/add",
                param="path",
            )
        raise InvalidRequestError(f"{source} has no ChatGPT tokens (tokens is missing)", param="path")
    access, refresh, id_token = (_string(tokens, n) for n in ("access_token", "refresh_token", "id_token"))
    if access is None or refresh is None:
        missing = "access_token" if access is None else "refresh_token"
        raise InvalidRequestError(f"{source}: tokens.{missing} is missing", param="path")
    claims = read_claims(id_token, access)
    if claims.email is None:
        raise InvalidRequestError(
            f"{source}: no email in the id_token or the access token; cannot tell which account it is",
            param="path",
        )
    return ImportedLogin(
        email=claims.email,
        # The current layout writes the account id; older files leave it to the id_token.
        account_id=_string(tokens, "account_id") or claims.account_id,
        plan_type=claims.plan_type,
        tokens=Tokens(access_token=access, refresh_token=refresh, id_token=id_token),
        access_expires_at=claims.expires_at,
        last_refresh=_timestamp(data.get("last_refresh")),
    )


def read_auth_json(path: str | Path | None = None) -> ImportedLogin:
    """Read and parse an ``auth.json`` (default :func:`default_auth_file`). Blocking: call it off the
    event loop."""
    file = Path(path).expanduser() if path is not None else default_auth_file()
    return parse_auth_json(_read(file), source=str(file))
