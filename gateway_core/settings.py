"""The host's settings, as plugins and routing see them: a read-only mapping of names to strings.

The host resolves configuration — the environment, CLI flags, later the store — and hands the result
to plugins as a :class:`Settings` object (STYLE §10). A plugin reads the names it documents (by
convention ``RELAYGATE_<PLUGIN>_*``) and never looks at ``os.environ`` itself, so a library user can
configure a gateway entirely in code and tests never depend on the process environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping

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
