"""What the bench measures, and how each server is brought up on the mock upstream.

- direct: the load generator straight to the mock, once per upstream protocol: the floor of client
  plus mock, which every other target's added latency is measured against (the Codex lane against the
  Codex endpoint, everything else against the chat endpoint);
- bare relay (:mod:`bench.bare_relay`): the cost of Python itself;
- relaygate, exactly as ``relaygate serve`` runs it, on the Codex lane (an account imported from an
  ``auth.json`` the bench writes, tokens unsigned and valid for ten years) and on the Haiku lane (the
  ``kilo`` provider's base URL pointed at the mock);
- LiteLLM's proxy (Anthropic ``/v1/messages`` to an OpenAI-compatible upstream, one worker, no
  database), when ``make bench-peers`` installed it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import orjson

from bench import servers, workloads

PEERS_HOME: Final = Path(os.environ.get("RELAYGATE_BENCH_PEERS", Path.home() / ".cache" / "relaygate-bench"))
LITELLM_VENV: Final = PEERS_HOME / "litellm-venv"
BENCH_EMAIL: Final = "bench@example.com"


@dataclass(frozen=True, slots=True)
class Target:
    """One line of the result tables."""

    key: str
    label: str
    server: str
    """The :class:`~bench.servers.Server` that answers (``mock`` for direct)."""
    flavor: str
    """How it is asked (:data:`bench.workloads.FLAVORS`)."""
    baseline: str | None
    """The direct target its added latency is measured against; ``None`` for a direct one."""
    upstream_events: int
    """SSE events the mock sends for one streamed answer on this target's upstream protocol."""


def all_targets(responses_events: int, chat_events: int) -> list[Target]:
    return [
        Target("direct-chat", "direct, chat upstream", "mock", "chat-upstream", None, chat_events),
        Target(
            "direct-codex", "direct, Codex upstream", "mock", "responses-upstream", None, responses_events
        ),
        Target("bare", "bare relay", "bare", "anthropic", "direct-chat", chat_events),
        Target(
            "relaygate-codex",
            "relaygate, Codex lane",
            "relaygate",
            "anthropic",
            "direct-codex",
            responses_events,
        ),
        Target(
            "relaygate-haiku",
            "relaygate, Haiku lane",
            "relaygate",
            "anthropic-haiku",
            "direct-chat",
            chat_events,
        ),
        Target("litellm", "LiteLLM proxy", "litellm", "anthropic", "direct-chat", chat_events),
    ]


# --- the Codex login the bench imports ---------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, object]) -> str:
    """An ``alg: none`` JWT, the shape the ChatGPT issuer's tokens have (nobody verifies the signature)."""
    header = json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode()
    return f"{_b64url(header)}.{_b64url(orjson.dumps(claims))}.c2ln"


def write_auth_file(path: Path) -> None:
    """A Codex CLI ``auth.json`` whose tokens expire in ten years, so no refresh ever happens."""
    now = int(time.time())
    account_id = str(uuid.uuid4())
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user-bench"}
    profile = {"email": BENCH_EMAIL, "email_verified": True}
    common = {
        "https://api.openai.com/auth": auth,
        "https://api.openai.com/profile": profile,
        "iss": "https://auth.openai.com",
        "iat": now,
        "exp": now + 10 * 365 * 86400,
    }
    tokens = {
        "id_token": unsigned_jwt({"email": BENCH_EMAIL, **common, "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"]}),
        "access_token": unsigned_jwt(
            {**common, "aud": ["https://api.openai.com/v1"], "jti": uuid.uuid4().hex}
        ),
        "refresh_token": "rt_bench_never_used",
        "account_id": account_id,
    }
    last_refresh = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": last_refresh}
    path.write_bytes(orjson.dumps(body))
    path.chmod(0o600)


# --- environments and commands -------------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    """The environment without any relaygate, proxy or database setting of the user's."""
    dropped = ("RELAYGATE_", "LITELLM_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def relaygate_command(port: int) -> list[str]:
    return [
        str(Path(sys.executable).parent / "relaygate"),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def relaygate_environment(folder: Path, mock_url: str, auth_file: Path) -> dict[str, str]:
    env = clean_environment()
    env.update(
        RELAYGATE_HOME=str(folder / "relaygate-home"),
        RELAYGATE_CODEX_BASE_URL=f"{mock_url}/backend-api",
        RELAYGATE_KILO_BASE_URL=f"{mock_url}/v1",
        RELAYGATE_OAUTH_ISSUER=mock_url,
        RELAYGATE_CODEX_AUTH_FILE=str(auth_file),
        RELAYGATE_CLAUDE_SETTINGS=str(folder / "claude-settings.json"),
    )
    return env


def bare_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "bench.bare_relay:app", "--host", servers.HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def mock_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.mock_upstream", "--port", str(port)]


def litellm_executable(venv: Path = LITELLM_VENV) -> Path | None:
    executable = venv / "bin" / "litellm"
    return executable if executable.exists() else None


def litellm_config(path: Path, mock_url: str) -> None:
    """One model entry per name the bench sends, each an OpenAI-compatible model at the mock."""
    lines = ["model_list:"]
    for name in [*workloads.models_used(), "bench-chat"]:
        lines += [
            f"  - model_name: {json.dumps(name)}",
            "    litellm_params:",
            '      model: "openai/moonshotai/kimi-k2.5:free"',
            f"      api_base: {json.dumps(mock_url + '/v1')}",
            '      api_key: "bench"',
        ]
    # Without the flag, LiteLLM sends /v1/messages for `openai/` models to the Responses API instead.
    lines += [
        "litellm_settings:",
        "  drop_params: true",
        "  telemetry: false",
        "  use_chat_completions_url_for_anthropic_messages: true",
    ]
    path.write_text("\n".join(lines) + "\n")


def litellm_command(executable: Path, config: Path, port: int) -> list[str]:
    return [
        str(executable),
        "--config",
        str(config),
        "--host",
        servers.HOST,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def litellm_environment(folder: Path) -> dict[str, str]:
    env = clean_environment()
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        DISABLE_ADMIN_UI="True",
        HOME=str(folder / "litellm-home"),
    )
    (folder / "litellm-home").mkdir(exist_ok=True)
    return env
