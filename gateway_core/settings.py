"""The host's settings, as plugins and routing see them: a read-only mapping of names to strings.

The host resolves configuration — the environment, CLI flags, later the store — and hands the result
to plugins as a :class:`Settings` object (STYLE §10). A plugin reads the names it documents (by
convention ``RELAYGATE_<PLUGIN>_*``) and never looks at ``os.environ`` itself, so a library user can
configure a gateway entirely in code and tests never depend on the process environment.

:func:`get_text`, :func:`get_url` and :func:`get_seconds` read the kinds of value every provider has
(its base URL, its timeouts) from any such mapping, so each plugin refuses a wrong value the same way:
a :class:`ValueError` naming the variable, raised before any request is served.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

ENV_PREFIX = "RELAYGATE_"
"""Only variables with this prefix are taken from the environment: the project's own namespace, so an
unrelated secret in the environment (a cloud key, a token) is never handed to a plugin."""

# Names whose values never appear in a repr or a log line (datasette redacts `*key*` settings the same way).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)

# The words a boolean switch accepts; RELAYGATE_HAIKU_LANE documents on/off.
_BOOLEAN_WORDS: dict[str, bool] = {
    "on": True,
    "true": True,
    "yes": True,
    "1": True,
    "off": False,
    "false": False,
    "no": False,
    "0": False,
}


class Settings(Mapping[str, str]):
    """An immutable name -> value mapping; values are strings as in the environment."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = dict(values or {})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX) -> Settings:
        """The ``RELAYGATE_*`` variables of ``environ`` (default: the process environment)."""
        source = os.environ if environ is None else environ
        return cls({name: value for name, value in source.items() if name.startswith(prefix)})

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get_bool(self, name: str, default: bool) -> bool:
        """A switch such as ``RELAYGATE_HAIKU_LANE``: on/off, true/false, yes/no or 1/0; unset is ``default``.

        Raises :class:`ValueError` naming the setting when the value is none of those words.
        """
        raw = self._values.get(name, "").strip().lower()
        if not raw:
            return default
        if raw not in _BOOLEAN_WORDS:
            raise ValueError(f'{name}: expected "on" or "off", got {self._values[name]!r}')
        return _BOOLEAN_WORDS[raw]

    def __repr__(self) -> str:
        shown = {
            name: "***" if _SECRET_NAME.search(name) else value
            for name, value in sorted(self._values.items())
        }
        return f"Settings({shown!r})"


def get_text(settings: Mapping[str, str], name: str) -> str | None:
    """The value of ``name`` without surrounding spaces; ``None`` when it is unset or blank."""
    value = settings.get(name)
    return value.strip() if value is not None and value.strip() else None


def get_url(settings: Mapping[str, str], name: str, default: str) -> str:
    """A base URL such as ``RELAYGATE_KILO_BASE_URL``, without its trailing slash; unset is ``default``.

    Raises :class:`ValueError` naming the setting unless it is an http(s) URL without query or fragment
    (paths are appended to it).
    """
    value = get_text(settings, name) or default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name}: expected an http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name}: a base URL takes no query or fragment, got {value!r}")
    return value.rstrip("/")


def get_seconds(settings: Mapping[str, str], name: str, default: float) -> float:
    """A duration such as ``RELAYGATE_CODEX_IDLE_TIMEOUT``; unset or blank is ``default``.

    Raises :class:`ValueError` naming the setting unless it is a positive, finite number of seconds.
    """
    value = get_text(settings, name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}: expected a positive number of seconds, got {value!r}")
    return seconds
