"""The workloads, and how each target is asked for them.

- W1: Claude Code's non-streaming requests, both CLI versions in turn (``cc_nonstream_fallback`` of
  2.1.197 and ``cc332_nonstream_fallback`` of 2.1.332, 54-83 KB each), latency to the last byte;
- W2: the same conversation streamed (``cc_p_text_main``, ``cc332_p_text_main``): time to first and
  to last byte;
- W3: a small OpenAI Chat Completions request (the OpenAI SDK capture ``sdk_008``).

The bodies are the captured ones in ``../shared/protocols/fixtures/claude_code`` (``RELAYGATE_FIXTURES``
moves them), sent with the captured headers. Only the model changes, where a target needs another one
to pick a lane.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RELAYGATE_FIXTURES", REPO_ROOT.parent / "shared" / "protocols" / "fixtures"))

WORKLOADS: Final = ("W1", "W2", "W3")
DESCRIPTIONS: Final = {
    "W1": "Claude Code non-streaming /v1/messages (CLI 2.1.197 and 2.1.332 captures in turn)",
    "W2": "the same streamed (time to first byte and to last byte)",
    "W3": "a small OpenAI /v1/chat/completions request (OpenAI SDK capture), non-streaming",
}
CAPTURES: Final = {
    "W1": ("cc_nonstream_fallback", "cc332_nonstream_fallback"),
    "W2": ("cc_p_text_main", "cc332_p_text_main"),
    "W3": ("sdk_008_POST_v1_chat_completions",),
}
_DROPPED_HEADERS = frozenset({"host", "connection", "accept-encoding", "content-length"})

HAIKU_MODEL: Final = "claude-haiku-4-5-20251001"
CHAT_HAIKU_MODEL: Final = "claude-haiku-4-5"


@dataclass(frozen=True, slots=True)
class Capture:
    """One captured request: its body and the headers worth replaying."""

    name: str
    body: dict[str, Any]
    headers: dict[str, str]


def load_capture(name: str) -> Capture:
    file = f"{name}.json" if name.startswith("sdk_") else f"{name}_request.json"
    data = orjson.loads((FIXTURES / "claude_code" / file).read_bytes())
    headers = {k: v for k, v in data["headers"].items() if k.lower() not in _DROPPED_HEADERS}
    return Capture(name, data["body"], headers)


@dataclass(frozen=True, slots=True)
class Request:
    """How a target is asked for a workload: where, with which bodies and headers, what ends the answer."""

    path: str
    bodies: tuple[Path, ...]
    headers: Mapping[str, str]
    stream: bool
    expect: str

    def command(self, base_url: str) -> dict[str, Any]:
        """The part of a load generator command that describes the request."""
        return {
            "url": base_url + self.path,
            "bodies": [str(p) for p in self.bodies],
            "headers": dict(self.headers),
            "stream": self.stream,
            "expect": self.expect,
        }


# How each kind of target is addressed: the Anthropic / OpenAI front door, or the upstream itself.
Flavor = str
FLAVORS: Final = ("anthropic", "anthropic-haiku", "chat-upstream", "responses-upstream")


def _model_for(flavor: Flavor, workload: str, captured: str) -> str:
    if flavor == "anthropic-haiku":
        return CHAT_HAIKU_MODEL if workload == "W3" else HAIKU_MODEL
    return captured


def build_requests(folder: Path) -> dict[tuple[Flavor, str], Request]:
    """Every (flavor, workload) request, with its bodies written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    requests: dict[tuple[Flavor, str], Request] = {}
    for workload in WORKLOADS:
        captures = [load_capture(name) for name in CAPTURES[workload]]
        stream = workload == "W2"
        for flavor in FLAVORS:
            paths = []
            for capture in captures:
                body = dict(capture.body, model=_model_for(flavor, workload, capture.body["model"]))
                path = folder / f"{flavor}-{capture.name}.json"
                path.write_bytes(orjson.dumps(body))
                paths.append(path)
            headers = captures[0].headers
            if flavor == "responses-upstream":
                requests[flavor, workload] = Request(
                    "/backend-api/codex/responses", tuple(paths), headers, stream, "response.completed"
                )
            elif flavor == "chat-upstream":
                expect = "[DONE]" if stream else '"choices"'
                requests[flavor, workload] = Request(
                    "/v1/chat/completions", tuple(paths), headers, stream, expect
                )
            elif workload == "W3":
                requests[flavor, workload] = Request(
                    "/v1/chat/completions", tuple(paths), headers, False, '"choices"'
                )
            else:
                expect = "message_stop" if stream else '"stop_reason"'
                requests[flavor, workload] = Request(
                    "/v1/messages?beta=true", tuple(paths), headers, stream, expect
                )
    return requests


def models_used() -> list[str]:
    """Every model name a request of the bench may carry (for peers that need a model list)."""
    names = {HAIKU_MODEL, CHAT_HAIKU_MODEL}
    for captures in CAPTURES.values():
        names.update(load_capture(name).body["model"] for name in captures)
    return sorted(names)
