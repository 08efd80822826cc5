"""``relaygate accounts …``: add, list, switch, refresh and inspect accounts from the shell.

Every command runs against the running gateway's admin API, or in-process when no gateway answers
(see :mod:`gateway_server.cli_backends`). Output is text for people (tables for ``list`` and
``quota``), or the admin API's JSON with ``--json``. Exit status: 0 when the command did what it
was asked, 1 with a one-line message on stderr otherwise — never a traceback.

``add`` prints the login URL (and opens it, unless ``--no-browser``), then waits until the login
completes: the callback listener of whoever started the login (the gateway, or this process) receives
the browser's redirect. When the browser cannot reach that listener (another machine, a container),
paste the address it ended on — or just the ``code`` — and press Enter.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

import anyio
import anyio.to_thread
import orjson

from gateway_core.errors import GatewayError
from gateway_core.plugins import PluginError
from gateway_core.settings import Settings
from gateway_server.cli_backends import Accounts, CommandError, connect
from gateway_server.cli_output import (
    format_accounts,
    format_quota,
    format_quota_all,
    format_refresh_all,
    format_strategy,
    format_usage,
)

LOGIN_TIMEOUT = 300.0
"""Seconds ``accounts add`` waits for the login to complete."""

POLL_INTERVAL = 0.5
"""Seconds between two looks at the account list while a login is pending."""

# Account fields that change when a login (re)stores an account, and not when traffic flows through
# it (last use, quota and cooling move with every request).
_LOGIN_FIELDS = ("email", "accountId", "planType", "addedAt", "invalidReason", "tokenExpired")

Command = Callable[[Accounts, argparse.Namespace], Awaitable[int]]


def _say(message: str) -> None:
    """Progress for the person at the terminal: stderr, so ``--json`` output stays clean."""
    print(message, file=sys.stderr, flush=True)


def _emit(
    args: argparse.Namespace, body: Mapping[str, Any], text: Callable[[Mapping[str, Any]], str]
) -> None:
    if args.json:
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        print(text(body))


def _message(body: Mapping[str, Any]) -> str:
    return str(body.get("message", "done"))


# --- add ------------------------------------------------------------------------------------------


def _fingerprint(account: Mapping[str, Any]) -> tuple[Any, ...]:
    invalid = account.get("status") == "invalid"
    return (*(account.get(name) for name in _LOGIN_FIELDS), invalid)


def _read_pasted_lines(stream: TextIO, lines: queue.Queue[str]) -> None:
    """Feed what the user pastes into ``lines`` until end of input (runs in a daemon thread, so a
    pending read never keeps the process alive)."""
    while True:
        try:
            line = stream.readline()
        except (OSError, ValueError):  # no usable stdin (closed, or captured)
            return
        if not line:
            return
        lines.put(line)


def _listen_for_pastes() -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_pasted_lines, args=(sys.stdin, lines), daemon=True).start()
    return lines


async def _complete_from_paste(accounts: Accounts, pasted: queue.Queue[str]) -> dict[str, Any] | None:
    """Complete the login from the first usable pasted line; a wrong one is reported, not fatal."""
    while not pasted.empty():
        line = pasted.get_nowait().strip()
        if not line:
            continue
        try:
            return await accounts.finish_login_manual(line)
        except (CommandError, GatewayError) as exc:
            _say(f"relaygate: {_error_text(exc)}; paste again, or finish the login in the browser")
    return None


def _stored_by_login(known: set[tuple[Any, ...]], listed: Mapping[str, Any]) -> dict[str, Any] | None:
    for account in listed.get("accounts") or []:
        if _fingerprint(account) not in known:
            email = account["email"]
            return {"success": True, "message": f"Account {email} added", "email": email, "account": account}
    return None


async def wait_for_login(
    accounts: Accounts,
    before: Mapping[str, Any],
    pasted: queue.Queue[str],
    *,
    interval: float = POLL_INTERVAL,
) -> dict[str, Any]:
    """Wait until a login stores an account (a new one, or an existing one re-stored), or complete it
    from a pasted callback URL or code; an ``add/manual``-like answer either way. Bound it with
    :func:`anyio.fail_after`."""
    known = {_fingerprint(account) for account in before.get("accounts") or []}
    while True:
        done = await _complete_from_paste(accounts, pasted)
        if done is None:
            done = _stored_by_login(known, await accounts.list_accounts())
        if done is not None:
            return done
        await anyio.sleep(interval)


async def _add(accounts: Accounts, args: argparse.Namespace) -> int:
    before = await accounts.list_accounts()
    start = await accounts.begin_login()
    url = str(start["oauth_url"])
    _say(f"Log in to add an account:\n\n  {url}\n")
    if not args.no_browser:
        opened = await anyio.to_thread.run_sync(webbrowser.open, url)
        if not opened:
            _say("(No browser could be opened: open the address above yourself.)")
    _say(
        "Waiting for the login to complete. If the browser ends on a page that does not load, paste its "
        "address (or the code) here and press Enter."
    )
    try:
        with anyio.fail_after(args.timeout):
            body = await wait_for_login(accounts, before, _listen_for_pastes())
    except TimeoutError:
        raise CommandError(
            f"no login completed within {args.timeout:g} seconds; run `relaygate accounts add` again"
        ) from None
    _emit(args, body, _message)
    return 0


# --- the other commands ---------------------------------------------------------------------------


async def _list(accounts: Accounts, args: argparse.Namespace) -> int:
    _emit(args, await accounts.list_accounts(), format_accounts)
    return 0


async def _import(accounts: Accounts, args: argparse.Namespace) -> int:
    _emit(args, await accounts.import_credentials(args.path), _message)
    return 0


async def _switch(accounts: Accounts, args: argparse.Namespace) -> int:
    _emit(args, await accounts.switch(args.email), _message)
    return 0


async def _remove(accounts: Accounts, args: argparse.Namespace) -> int:
    _emit(args, await accounts.remove(args.email), _message)
    return 0


async def _refresh(accounts: Accounts, args: argparse.Namespace) -> int:
    if not args.all:
        _emit(args, await accounts.refresh(args.email), _message)
        return 0
    body = await accounts.refresh_all()
    _emit(args, body, format_refresh_all)
    failed = [email for email, result in (body.get("results") or {}).items() if not result.get("success")]
    return 1 if failed else 0


async def _quota(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.all:
        _emit(args, await accounts.quota_all(), format_quota_all)
    else:
        _emit(args, await accounts.quota(args.email, refresh=args.refresh), format_quota)
    return 0


async def _usage(accounts: Accounts, args: argparse.Namespace) -> int:
    _emit(args, await accounts.usage(args.email), format_usage)
    return 0


async def _strategy(accounts: Accounts, args: argparse.Namespace) -> int:
    body = await (accounts.strategy() if args.name is None else accounts.set_strategy(args.name))
    _emit(args, body, format_strategy)
    return 0


COMMANDS: dict[str, Command] = {
    "add": _add,
    "list": _list,
    "import": _import,
    "switch": _switch,
    "remove": _remove,
    "refresh": _refresh,
    "quota": _quota,
    "usage": _usage,
    "strategy": _strategy,
}


# --- wiring ---------------------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CommandError | GatewayError):
        return exc.message
    return str(exc)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with connect(settings, args.provider) as accounts:
        return await COMMANDS[args.accounts_command](accounts, args)


def run(args: argparse.Namespace) -> int:
    """Run one ``relaygate accounts`` command; the exit status."""
    try:
        return anyio.run(_run, args, Settings.from_environ())
    except (CommandError, GatewayError, PluginError, ValueError) as exc:
        print(f"relaygate: {_error_text(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("relaygate: cancelled", file=sys.stderr)
    except Exception as exc:  # a bug or an unforeseen failure: still one line, not a traceback
        print(f"relaygate: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def add_parser(commands: Any) -> None:
    """Add ``accounts`` and its subcommands to the top-level ``commands`` (``add_subparsers()``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the admin API's JSON instead of text")
    common.add_argument(
        "--provider", default=None, help="whose accounts (default: the only provider with accounts, or codex)"
    )
    accounts = commands.add_parser(
        "accounts",
        help="manage provider accounts",
        description="Manage accounts through the running gateway, or in-process when none is running.",
    )
    sub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="COMMAND")

    add = sub.add_parser("add", parents=[common], help="log in with a browser and add the account")
    add.add_argument("--no-browser", action="store_true", help="only print the login URL")
    add.add_argument("--timeout", type=float, default=LOGIN_TIMEOUT, help="seconds to wait for the login")
    sub.add_parser("list", parents=[common], help="list accounts")
    imported = sub.add_parser("import", parents=[common], help="import the Codex CLI's login")
    imported.add_argument("--path", default=None, help="credentials file (default RELAYGATE_CODEX_AUTH_FILE)")
    switch = sub.add_parser("switch", parents=[common], help="make an account the active one")
    switch.add_argument("email")
    remove = sub.add_parser("remove", parents=[common], help="forget an account and its tokens")
    remove.add_argument("email")
    refresh = sub.add_parser("refresh", parents=[common], help="refresh tokens (default: the active account)")
    which = refresh.add_mutually_exclusive_group()
    which.add_argument("email", nargs="?", default=None)
    which.add_argument("--all", action="store_true", help="every account")
    quota = sub.add_parser("quota", parents=[common], help="rate-limit windows (default: the active account)")
    scope = quota.add_mutually_exclusive_group()
    scope.add_argument("email", nargs="?", default=None)
    scope.add_argument("--all", action="store_true", help="every account")
    quota.add_argument("--refresh", action="store_true", help="ask the upstream now instead of the cache")
    usage = sub.add_parser("usage", parents=[common], help="recorded usage (default: all accounts)")
    usage.add_argument("email", nargs="?", default=None)
    strategy = sub.add_parser("strategy", parents=[common], help="show or set the rotation strategy")
    strategy.add_argument("name", nargs="?", default=None, help="sticky, round-robin or quota-aware")
    accounts.set_defaults(handler=run)
