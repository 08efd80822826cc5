"""The ``kilo`` provider's settings, read once from the host's :class:`~gateway_core.settings.Settings`.

Every name here is a ``RELAYGATE_*`` variable the host resolved (DESIGN §5); the plugin never reads the
process environment itself. A value that is present but wrong raises :class:`ValueError` naming the
variable, so the host reports it against this plugin before any request is served.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway_core.settings import get_seconds, get_text, get_url

BASE_URL = "RELAYGATE_KILO_BASE_URL"
API_KEY = "RELAYGATE_HAIKU_API_KEY"
CONNECT_TIMEOUT = "RELAYGATE_KILO_CONNECT_TIMEOUT"
FIRST_EVENT_TIMEOUT = "RELAYGATE_KILO_FIRST_EVENT_TIMEOUT"
IDLE_TIMEOUT = "RELAYGATE_KILO_IDLE_TIMEOUT"
MODELS_TTL = "RELAYGATE_KILO_MODELS_TTL"

DEFAULT_BASE_URL = "https://api.kilo.ai/api/gateway"
"""Kilo's OpenAI-compatible gateway: ``/chat/completions`` and ``/models`` (protocols §3, §9)."""

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_FIRST_EVENT_TIMEOUT = 60.0
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_MODELS_TTL = 600.0

# A bearer key travels in a header: printable ASCII without spaces, so it can never split the header.
_KEY = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class OpenRouterSettings:
    """Where the OpenRouter-compatible gateway is, how we authenticate, and how long we wait."""

    base_url: str = DEFAULT_BASE_URL
    """``RELAYGATE_KILO_BASE_URL``, no trailing slash: ``{base}/chat/completions``, ``{base}/models``."""
    api_key: str | None = field(default=None, repr=False)
    """``RELAYGATE_HAIKU_API_KEY``: the bearer key (OpenRouter's ``sk-or-...`` or a Kilo key). Unset:
    requests go without ``Authorization``, which Kilo allows for its free models only."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """``RELAYGATE_KILO_CONNECT_TIMEOUT`` (seconds): opening a connection to the gateway."""
    first_event_timeout: float = DEFAULT_FIRST_EVENT_TIMEOUT
    """``RELAYGATE_KILO_FIRST_EVENT_TIMEOUT`` (seconds): from sending a request to the first content of
    its answer. Keep-alive comments (``: OPENROUTER PROCESSING``) do not count, so a queued free model
    that never starts fails in bounded time and the Haiku lane falls back to Codex (protocols §9). A
    non-streamed answer is bounded by :attr:`whole_answer_timeout` instead."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """``RELAYGATE_KILO_IDLE_TIMEOUT`` (seconds): the longest silence between two events of a started
    answer; the stream then ends with an in-band error instead of hanging."""
    models_ttl: float = DEFAULT_MODELS_TTL
    """``RELAYGATE_KILO_MODELS_TTL`` (seconds): how long the free-model list is reused."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> OpenRouterSettings:
        """Read and check the ``RELAYGATE_*`` values; unset or blank ones take their defaults."""
        return cls(
            base_url=get_url(settings, BASE_URL, DEFAULT_BASE_URL),
            api_key=_key(API_KEY, get_text(settings, API_KEY)),
            connect_timeout=get_seconds(settings, CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT),
            first_event_timeout=get_seconds(settings, FIRST_EVENT_TIMEOUT, DEFAULT_FIRST_EVENT_TIMEOUT),
            idle_timeout=get_seconds(settings, IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT),
            models_ttl=get_seconds(settings, MODELS_TTL, DEFAULT_MODELS_TTL),
        )

    @property
    def whole_answer_timeout(self) -> float:
        """Seconds a non-streamed answer (``stream:false``) may take, from sending the request to the end
        of its body: ``first_event_timeout + idle_timeout``. Such a gateway sends its headers and body
        only once the whole answer is ready, so the first-event deadline alone would cut long answers: the
        idle timeout is added as the time the generation itself may take. A stall past the bound is an
        :class:`~gateway_core.errors.UpstreamTimeoutError` (504), raised before any event."""
        return self.first_event_timeout + self.idle_timeout

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/models"

    @property
    def host(self) -> str:
        """The gateway's host name, for error messages (``api.kilo.ai``, ``openrouter.ai``)."""
        return _host_of(self.base_url)


@functools.lru_cache(maxsize=16)
def _host_of(url: str) -> str:
    """Asked several times per request (every error message names the host): parsed once."""
    return urlsplit(url).hostname or url


def _key(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        # The value itself is a secret: never repeat it in the message.
        raise ValueError(f"{name}: a key is printable ASCII without spaces or line breaks")
    return value
