"""The process the kill -9 tests kill (``python -m tests.e2e_accounts_child HOME BASE ISSUER EMAIL``):
it refreshes one account with a Codex account pool on the SQLite store in ``HOME`` and reports its
progress on stdout, one word a line, so the test knows where the kill lands:

- ``refreshing``: the pool is loaded and the refresh request is about to go to the issuer;
- ``written``: the rotated tokens are committed (only with ``--pause``, which then stops the process
  dead right there, inside the refresh);
- ``refreshed``: the refresh is over.

It imports only the store and the pool, so it starts quickly.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio
import httpx

from gateway_core.store import AccountRecord, SQLiteStore
from gateway_providers.codex.accounts import CodexAccountPool
from gateway_providers.codex.config import CodexSettings


class _PausingStore(SQLiteStore):
    """A store that stops dead right after the new tokens are committed (the kill lands there)."""

    async def update_tokens(self, *args: Any, **kwargs: Any) -> AccountRecord:
        saved = await super().update_tokens(*args, **kwargs)
        print("written", flush=True)
        await anyio.sleep(3600)
        return saved


async def refresh_in_child(home: Path, base_url: str, issuer: str, email: str, *, pause: bool) -> None:
    """Refresh ``email`` with a pool on the store in ``home``: prints ``refreshing`` first, then
    ``written`` once the rotated tokens are durable (and waits there when ``pause``), ``refreshed``
    at the end."""
    store = await (_PausingStore if pause else SQLiteStore).open(home)
    settings = CodexSettings(base_url=base_url, oauth_issuer=issuer)
    async with httpx.AsyncClient(timeout=30) as http:
        pool = CodexAccountPool(store, settings, http, callback_listener=False)
        print("refreshing", flush=True)
        await pool.refresh(email)
        print("refreshed", flush=True)
        await pool.aclose()
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("base_url")
    parser.add_argument("issuer")
    parser.add_argument("email")
    parser.add_argument("--pause", action="store_true")
    args = parser.parse_args()
    anyio.run(lambda: refresh_in_child(args.home, args.base_url, args.issuer, args.email, pause=args.pause))


if __name__ == "__main__":
    main()
