"""Reading admin request bodies and query values: every mistake is a 400 naming the field.

Admin bodies are small JSON objects (``{"email": …}``, ``{"strategy": …}``). The helpers here turn
malformed JSON, a body that is not an object, a missing field or a field of the wrong type into an
:class:`~gateway_core.errors.InvalidRequestError` whose message starts with the field's name, and
never let a ``KeyError`` or ``TypeError`` reach the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from litestar import Request

from gateway_core.errors import InvalidRequestError

# Words a boolean query flag accepts (``?refresh=true``); an empty value counts as set.
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def parse_body(raw: bytes, *, required: bool) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` unless ``required``."""
    if not raw.strip():
        if required:
            raise InvalidRequestError("request body is empty; expected a JSON object")
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError(f"request body must be a JSON object, got {_type_name(body)}")
    return body


async def read_body(request: Request[Any, Any, Any], *, required: bool = True) -> dict[str, Any]:
    """The request's body as a JSON object (see :func:`parse_body`)."""
    return parse_body(await request.body(), required=required)


def required_string(body: Mapping[str, Any], name: str) -> str:
    """``body[name]`` as a non-empty string."""
    if name not in body or body[name] is None:
        raise InvalidRequestError(f"{name}: required field is missing", param=name)
    return _non_empty_string(body[name], name)


def optional_string(body: Mapping[str, Any], name: str) -> str | None:
    """``body[name]`` as a non-empty string, or ``None`` when absent or null."""
    if body.get(name) is None:
        return None
    return _non_empty_string(body[name], name)


def first_string(body: Mapping[str, Any], names: Sequence[str]) -> str:
    """The first of ``names`` present in ``body``, as a non-empty string; none present is a 400
    naming every accepted field."""
    for name in names:
        if body.get(name) is not None:
            return _non_empty_string(body[name], name)
    accepted = ", ".join(f'"{name}"' for name in names)
    raise InvalidRequestError(
        f"{names[0]}: required field is missing (send one of {accepted})", param=names[0]
    )


def _non_empty_string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name}: expected a string, got {_type_name(value)}", param=name)
    if not value.strip():
        raise InvalidRequestError(f"{name}: must not be empty", param=name)
    return value.strip()


def query_flag(value: str | None, name: str) -> bool:
    """A boolean query parameter: ``true``/``1``/``yes``/``on`` or ``false``/``0``/``no``/``off``."""
    if value is None:
        return False
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidRequestError(f'{name}: expected "true" or "false", got {value!r}', param=name)


def query_string(value: str | None) -> str | None:
    """An optional query parameter; present but blank counts as absent (``?email=`` from a form)."""
    if value is None or not value.strip():
        return None
    return value.strip()
