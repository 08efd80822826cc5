"""What one upstream attempt needs from the account pool: :class:`Lease`.

The provider asks the pool for a lease (``CodexAccountPool.acquire``), sends the request with its
headers, and reports the outcome back with the same lease (quota headers, a usage limit, a 401, usage
counters). A lease is a snapshot: after a token refresh the pool hands out a new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway_core.models import ModelInfo


@dataclass(frozen=True, slots=True)
class Lease:
    """An account's identity and bearer token for one attempt; the repr leaves the token out."""

    email: str
    account_id: str
    """The ``ChatGPT-Account-ID`` header value; empty when the account's tokens name none (an old
    ``auth.json`` whose id_token lacks ``chatgpt_account_id``): send no such header then."""
    access_token: str = field(repr=False)

    def auth_headers(self) -> dict[str, str]:
        """``Authorization`` and, when known, ``chatgpt-account-id`` (protocols §4.1)."""
        headers = {"authorization": f"Bearer {self.access_token}"}
        if self.account_id:
            headers["chatgpt-account-id"] = self.account_id
        return headers


ModelsSource = Callable[[Lease], Awaitable[list[ModelInfo]]]
"""Lists the models one account may use (the provider's ``GET {base}/codex/models``)."""
