"""Checks for wire JSON that name the offending field.

Wire decoders walk the client's JSON once and build canonical objects; when something is wrong they
raise :class:`InvalidRequestError` whose message starts with the dotted path of the field, e.g.
``messages.3.content.0.type: unknown block type "foo"``, and whose ``param`` is that path. Never a
bare pydantic traceback: a canonical constructor that still refuses a value goes through :func:`build`.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from gateway_core.errors import InvalidRequestError

M = TypeVar("M", bound=BaseModel)

_TYPE_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def join(path: str, key: str | int) -> str:
    """``join("messages", 3) == "messages.3"``; an empty path gives just the key."""
    return f"{path}.{key}" if path else str(key)


def fail(path: str, message: str) -> NoReturn:
    """Raise an invalid-request error for the field at ``path``."""
    raise InvalidRequestError(f"{path}: {message}" if path else message, param=path or None)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


def expect_object(value: object, path: str) -> dict[str, Any]:
    """The value as a JSON object, or an error naming ``path``."""
    if not isinstance(value, dict):
        fail(path, f"expected an object, got {_describe(value)}")
    return value


def expect_list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        fail(path, f"expected an array, got {_describe(value)}")
    return value


def expect_str(value: object, path: str) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {_describe(value)}")
    return value


def expect_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {_describe(value)}")
    return value


def expect_number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(path, f"expected a number, got {_describe(value)}")
    return float(value)


def expect_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        fail(path, f"expected a boolean, got {_describe(value)}")
    return value


def required(body: dict[str, Any], key: str, path: str) -> Any:
    """``body[key]``, or an error saying the field is required."""
    value = body.get(key)
    if value is None:
        fail(join(path, key), "field required")
    return value


# The optional_* readers are called for every field of every message and tool: the field's path is
# only put together when the value is wrong (a large request has hundreds of fields).


def optional_str(body: dict[str, Any], key: str, path: str) -> str | None:
    value = body.get(key)
    if value is None or type(value) is str:
        return value
    return expect_str(value, join(path, key))


def optional_int(body: dict[str, Any], key: str, path: str) -> int | None:
    value = body.get(key)
    if value is None or type(value) is int:
        return value
    return expect_int(value, join(path, key))


def optional_number(body: dict[str, Any], key: str, path: str) -> float | None:
    value = body.get(key)
    return None if value is None else expect_number(value, join(path, key))


def optional_bool(body: dict[str, Any], key: str, path: str) -> bool | None:
    value = body.get(key)
    if value is None or type(value) is bool:
        return value
    return expect_bool(value, join(path, key))


def build(model: type[M], path: str, /, **fields: Any) -> M:
    """Construct a canonical object; a value it refuses becomes an error naming the field."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        fail(join(path, where) if where else path, first["msg"])
