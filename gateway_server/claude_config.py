"""Claude Code's settings file, switched between the gateway ("proxy") and Anthropic ("direct").

Pure file logic, no web framework: the ``/claude/config`` routes and ``relaygate claude`` run it in a
worker thread. Claude Code reads ``"env"`` from ``~/.claude/settings.json`` (protocols README §6.6), so
proxy mode writes there:

- ``ANTHROPIC_BASE_URL``: the gateway (``http://127.0.0.1:{port}``);
- ``ANTHROPIC_API_KEY``: the gateway's key, or :data:`PLACEHOLDER_API_KEY` when it needs none (Claude
  Code wants some key, and without one it asks the user to log in to Anthropic);
- ``ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL``: a Claude name per lane, so the aliases, the default
  model, sub-agents and titles all land on the lanes the gateway routes;

and removes ``ANTHROPIC_AUTH_TOKEN`` (sent as ``Authorization: Bearer`` alongside, it would carry an
Anthropic token to the gateway). Direct mode puts back what proxy mode replaced, from a
:class:`Snapshot` of the file taken before proxy mode first touched it: when nothing else changed in
between, the original bytes come back exactly (formatting, key order and all); otherwise only the
keys proxy mode touched are restored and every other edit is kept.

Rules for every write (DESIGN §8): the file is merged into (unrelated keys kept, in their order), the
previous file is backed up beside it as ``settings.json.bak-<UTC yyyymmddThhmmss>`` (0600), the new
one is written atomically (temporary file in the same folder, fsync, rename) with mode 0600, a missing
folder is created 0700, and a file that is not a JSON object is refused with
:class:`~gateway_core.errors.ConflictError` (409) and left untouched, with no backup. An empty file
counts as ``{}``: there is nothing in it to lose. A symlinked settings file is written through the
link, so a dotfiles checkout keeps its link.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from gateway_core.errors import ApiError, ConflictError
from gateway_core.routing import LANE_ALIASES
from gateway_core.settings import Settings

SETTINGS_VARIABLE = "RELAYGATE_CLAUDE_SETTINGS"
DEFAULT_SETTINGS_PATH = "~/.claude/settings.json"

PLACEHOLDER_API_KEY = "relaygate"
"""What proxy mode writes as ``ANTHROPIC_API_KEY`` when the gateway has no key of its own."""

BASE_URL = "ANTHROPIC_BASE_URL"
API_KEY = "ANTHROPIC_API_KEY"
AUTH_TOKEN = "ANTHROPIC_AUTH_TOKEN"

LANE_MODEL_KEYS: Mapping[str, str] = {
    "ANTHROPIC_DEFAULT_OPUS_MODEL": LANE_ALIASES["opus"],
    "ANTHROPIC_DEFAULT_SONNET_MODEL": LANE_ALIASES["sonnet"],
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": LANE_ALIASES["haiku"],
}
"""Claude Code's alias targets and the Claude name per lane each one gets in proxy mode."""

PROXY_KEYS: tuple[str, ...] = (BASE_URL, API_KEY, *LANE_MODEL_KEYS)
"""The ``env`` keys proxy mode sets."""

REMOVED_KEYS: tuple[str, ...] = (AUTH_TOKEN,)
"""The ``env`` keys proxy mode removes."""

TOUCHED_KEYS: tuple[str, ...] = (*PROXY_KEYS, *REMOVED_KEYS)

Mode = Literal["proxy", "direct"]

# Values never shown verbatim by GET /claude/config: env names ending like these (ANTHROPIC_AUTH_TOKEN,
# AWS_SECRET_ACCESS_KEY; not MAX_THINKING_TOKENS), and the top-level apiKey.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$", re.IGNORECASE)
_SECRET_TOP_LEVEL = frozenset({"apiKey"})
MASK = "***"

_BACKUP_TIME = "%Y%m%dT%H%M%S"


def settings_path(settings: Settings) -> Path:
    """The file to edit: ``RELAYGATE_CLAUDE_SETTINGS``, default ``~/.claude/settings.json``."""
    return Path(settings.get(SETTINGS_VARIABLE) or DEFAULT_SETTINGS_PATH).expanduser()


def proxy_env(base_url: str, api_key: str | None) -> dict[str, str]:
    """The ``env`` values proxy mode writes, in the order they are added."""
    return {BASE_URL: base_url, API_KEY: api_key or PLACEHOLDER_API_KEY, **LANE_MODEL_KEYS}


def dump(config: Mapping[str, Any]) -> bytes:
    """A settings file as Claude Code writes one: two-space indent, UTF-8, final newline."""
    return orjson.dumps(config, option=orjson.OPT_INDENT_2) + b"\n"


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The settings file as read."""

    path: Path
    """The path as configured (backups go beside it)."""
    target: Path
    """Where the bytes live: ``path``, or what it links to."""
    raw: bytes | None
    """The bytes; ``None`` when there is no file."""
    config: dict[str, Any] | None
    """The parsed object; ``None`` when there is no file or it is not a JSON object."""
    problem: str | None = None
    """Why the file cannot be edited, when it cannot."""

    @property
    def exists(self) -> bool:
        return self.raw is not None

    def editable(self) -> dict[str, Any]:
        """The parsed settings to merge into (``{}`` for no file); :class:`ConflictError` when the
        file must not be touched."""
        if self.problem is not None:
            raise ConflictError(
                f"{self.path} {self.problem}; fix or move it first (it was left untouched)", param="path"
            )
        return dict(self.config or {})


def _problem(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not raw.strip():
        return {}, None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc})"
    if not isinstance(parsed, dict):
        return None, f"is not a JSON object (it holds a {type(parsed).__name__})"
    if parsed.get("env") is not None and not isinstance(parsed["env"], dict):
        return None, 'has an "env" that is not a JSON object'
    return parsed, None


def read_config(path: Path) -> ConfigFile:
    """Read ``path``; a missing file is not an error, an unreadable one is a :class:`ConflictError`."""
    target = path.resolve() if path.is_symlink() else path
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return ConfigFile(path, target, None, None)
    except OSError as exc:
        raise ConflictError(f"{path} cannot be read: {exc.strerror or exc}", param="path") from None
    config, problem = _problem(raw)
    return ConfigFile(path, target, raw, config, problem)


def mode_of(config: Mapping[str, Any] | None, base_url: str) -> Mode:
    """``proxy`` when the file sends Claude Code to this gateway (``base_url``), else ``direct``."""
    env = (config or {}).get("env")
    if isinstance(env, dict) and str(env.get(BASE_URL, "")).rstrip("/") == base_url.rstrip("/"):
        return "proxy"
    return "direct"


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with secret values replaced by ``***``; the placeholder key is not a secret."""

    def hide(value: Any) -> Any:
        if isinstance(value, str) and value and value != PLACEHOLDER_API_KEY:
            return MASK
        return value

    shown = {name: hide(value) if name in _SECRET_TOP_LEVEL else value for name, value in config.items()}
    env = shown.get("env")
    if isinstance(env, dict):
        shown["env"] = {
            name: hide(value) if _SECRET_NAME.search(name) else value for name, value in env.items()
        }
    return shown


# --- what proxy mode replaced -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The settings file before proxy mode, and what proxy mode wrote: what direct mode needs."""

    original: str | None
    """The file's text before proxy mode first touched it; ``None`` when there was no file."""
    written: dict[str, str] = field(default_factory=dict)
    """The ``env`` values proxy mode wrote."""

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original, "written": dict(self.written)}

    @classmethod
    def from_json(cls, value: object) -> Snapshot | None:
        """A stored snapshot, or ``None`` when ``value`` is not one."""
        if not isinstance(value, dict):
            return None
        original, written = value.get("original"), value.get("written")
        if not (original is None or isinstance(original, str)) or not isinstance(written, dict):
            return None
        return cls(original, {str(name): str(text) for name, text in written.items()})

    def original_config(self) -> dict[str, Any]:
        """The settings before proxy mode (``{}`` for no file, or one that no longer parses)."""
        if self.original is None:
            return {}
        config, _ = _problem(self.original.encode())
        return config or {}

    def matches(self, current: ConfigFile) -> bool:
        """Whether ``current`` is still the file proxy mode wrote (its keys as written, no token)."""
        env = (current.config or {}).get("env") or {}
        return all(env.get(name) == value for name, value in self.written.items()) and AUTH_TOKEN not in env


@dataclass(frozen=True, slots=True)
class Plan:
    """The bytes to write (``None``: leave the file as it is) and the settings they hold."""

    current: ConfigFile
    content: bytes | None
    config: dict[str, Any]

    @property
    def changes(self) -> bool:
        return self.content is not None and self.content != self.current.raw


def plan_proxy(
    current: ConfigFile, env: Mapping[str, str], snapshot: Snapshot | None
) -> tuple[Plan, Snapshot]:
    """Proxy mode over ``current``, and the snapshot to keep: the one given while the file is still
    in the proxy state it describes (switching twice must not forget the real original), else a
    fresh one of ``current``."""
    config = current.editable()
    if snapshot is None or not snapshot.matches(current):
        snapshot = Snapshot(None if current.raw is None else current.raw.decode())
    merged = dict(config.get("env") or {})
    merged.update(env)
    for name in REMOVED_KEYS:
        merged.pop(name, None)
    config["env"] = merged
    return Plan(current, dump(config), config), Snapshot(snapshot.original, dict(env))


def plan_direct(
    current: ConfigFile, snapshot: Snapshot | None, *, proxy: Mapping[str, str], api_key: str | None
) -> Plan:
    """Direct mode over ``current``: the keys proxy mode touched get their values from before it (or
    go), then ``api_key`` when given. Without a snapshot, a proxy key is removed only when it holds
    what proxy mode would write (``proxy``). A result equal to the original settings is written as the
    original bytes."""
    config = current.editable()
    if not current.exists:
        if api_key is None:
            return Plan(current, None, config)
        config = {"env": {API_KEY: api_key}}
        return Plan(current, dump(config), config)
    env = dict(config.get("env") or {})
    before = len(env)
    if snapshot is not None:
        original = snapshot.original_config()
        original_env = dict(original.get("env") or {})
        if BASE_URL in snapshot.written and original_env.get(BASE_URL) == snapshot.written[BASE_URL]:
            # The snapshot was taken of a file already in proxy mode (the state store was reset, say):
            # what proxy mode wrote is not the user's to get back.
            for name, value in snapshot.written.items():
                if original_env.get(name) == value:
                    del original_env[name]
        for name in TOUCHED_KEYS:
            if name in original_env:
                env[name] = original_env[name]
            else:
                env.pop(name, None)
        drop_env = not env and "env" not in original
    else:
        for name in PROXY_KEYS:
            if name in env and env[name] == proxy.get(name):
                del env[name]
        drop_env = not env and before > 0
    if api_key is not None:
        env[API_KEY] = api_key
        drop_env = False
    if drop_env:
        config.pop("env", None)
    else:
        config["env"] = env
    if snapshot is not None and snapshot.original is not None and config == snapshot.original_config():
        return Plan(current, snapshot.original.encode(), config)
    return Plan(current, dump(config), config)


# --- writing ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did."""

    path: Path
    changed: bool
    backup: Path | None


def backup_path(path: Path, now: datetime) -> Path:
    """``settings.json.bak-<UTC yyyymmddThhmmss>`` beside ``path``."""
    return path.with_name(f"{path.name}.bak-{now.astimezone(UTC).strftime(_BACKUP_TIME)}")


def write_backup(path: Path, raw: bytes, now: datetime) -> Path:
    """Copy ``raw`` beside ``path`` (0600); a second backup within the same second gets ``-1``, ``-2``…
    rather than overwriting the first."""
    first = backup_path(path, now)
    candidate, number = first, 0
    while True:
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            number += 1
            candidate = first.with_name(f"{first.name}-{number}")
            continue
        with os.fdopen(fd, "wb") as backup:
            backup.write(raw)
            backup.flush()
            os.fsync(backup.fileno())
        return candidate


def atomic_write(target: Path, content: bytes) -> None:
    """Replace ``target`` with ``content`` (0600) so a reader sees the old file or the new one, never
    part of either; a folder that is missing is created 0700."""
    folder = target.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as output:
            os.fchmod(output.fileno(), 0o600)
            output.write(content)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems cannot sync a folder, which is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(plan: Plan, now: datetime) -> Written:
    """Write ``plan``: back up the previous file, then replace it atomically. Refuses (409) when the
    file changed since it was read, rather than overwrite an edit it never saw."""
    current = plan.current
    if not plan.changes or plan.content is None:
        return Written(current.path, False, None)
    if read_config(current.path).raw != current.raw:
        raise ConflictError(f"{current.path} changed while it was being updated; try again", param="path")
    try:
        backup = None if current.raw is None else write_backup(current.path, current.raw, now)
        atomic_write(current.target, plan.content)
    except OSError as exc:
        raise ApiError(f"{current.path} cannot be written: {exc.strerror or exc}", param="path") from None
    return Written(current.path, True, backup)
