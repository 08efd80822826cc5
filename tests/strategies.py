"""Hypothesis strategies for canonical objects, with switches for what a wire format can carry.

Conversations are generated as well-formed turns (a user turn, an assistant turn whose tool calls are
answered by the next user turn), because every format requires that shape.
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from gateway_core.models import (
    Base64Source,
    CacheControl,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    Request,
    Response,
    StopReason,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    UrlSource,
    Usage,
)


@dataclass(frozen=True)
class Carries:
    """What a format can represent; a strategy generates nothing outside it."""

    cache_control: bool = True
    images: bool = True
    image_urls: bool = True
    tool_result_images: bool = True
    tool_result_is_error: bool = True
    multi_part_tool_results: bool = True
    explicit_success: bool = True
    """Whether ``is_error=False`` is told apart from an absent flag."""
    reasoning: bool = True
    reasoning_provider: str | None = None
    """When set, reasoning parts are minted by this provider only (formats that replay one provider)."""
    reasoning_text_without_signature: bool = True
    system_messages: bool = True
    multiple_system_parts: bool = True
    assistant_text_and_calls: bool = True
    top_k: bool = True
    stop_sequences: bool = True
    user_id: bool = True
    empty_text: bool = True


ANTHROPIC = Carries(reasoning_provider=None)

TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=40,
)
NON_EMPTY_TEXT = TEXT.filter(lambda t: t.strip() != "")
SAFE_ID = st.from_regex(r"[a-zA-Z0-9_-]{1,40}", fullmatch=True)
TOOL_NAME = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,30}", fullmatch=True)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53), TEXT)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TOOL_NAME, inner, max_size=3),
    max_leaves=6,
)
ARGUMENTS = st.dictionaries(TOOL_NAME, JSON_VALUE, max_size=4)
B64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())


def _cache(carries: Carries) -> st.SearchStrategy[CacheControl | None]:
    if not carries.cache_control:
        return st.none()
    return st.one_of(st.none(), st.just(CacheControl()), st.just(CacheControl(ttl="1h")))


def text_parts(carries: Carries) -> st.SearchStrategy[TextPart]:
    text = TEXT if carries.empty_text else NON_EMPTY_TEXT
    return st.builds(TextPart, text=text, cache_control=_cache(carries))


def image_parts(carries: Carries) -> st.SearchStrategy[ImagePart]:
    inline = st.builds(
        Base64Source,
        media_type=st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]),
        data=B64,
    )
    url = st.builds(UrlSource, url=st.from_regex(r"https://example\.com/[a-z]{1,10}\.png", fullmatch=True))
    source = st.one_of(inline, url) if carries.image_urls else inline
    return st.builds(ImagePart, source=source, cache_control=_cache(carries))


def reasoning_parts(carries: Carries) -> st.SearchStrategy[ReasoningPart]:
    providers = (
        st.just(carries.reasoning_provider)
        if carries.reasoning_provider
        else st.sampled_from(["anthropic", "codex", "openrouter"])
    )
    signature = st.text(alphabet=string.ascii_letters + string.digits + "+/=_-", min_size=1, max_size=60)
    signed = st.builds(ReasoningPart, text=TEXT, signature=signature, provider=providers)
    if not carries.reasoning_text_without_signature:
        return signed
    return st.one_of(signed, st.builds(ReasoningPart, text=NON_EMPTY_TEXT))


def tool_call_parts(carries: Carries) -> st.SearchStrategy[ToolCallPart]:
    return st.builds(
        ToolCallPart, id=SAFE_ID, name=TOOL_NAME, arguments=ARGUMENTS, cache_control=_cache(carries)
    )


@st.composite
def tool_result_for(draw: st.DrawFn, call: ToolCallPart, carries: Carries) -> ToolResultPart:
    content_parts: st.SearchStrategy[Any] = text_parts(carries)
    if carries.images and carries.tool_result_images:
        content_parts = st.one_of(content_parts, image_parts(carries))
    most = 3 if carries.multi_part_tool_results else 1
    content = tuple(draw(st.lists(content_parts, min_size=1, max_size=most)))
    flags: list[bool | None] = [None, True, False] if carries.explicit_success else [None, True]
    is_error = draw(st.sampled_from(flags)) if carries.tool_result_is_error else None
    return ToolResultPart(
        tool_call_id=call.id, content=content, is_error=is_error, cache_control=draw(_cache(carries))
    )


@st.composite
def conversations(draw: st.DrawFn, carries: Carries = ANTHROPIC) -> tuple[Message, ...]:
    """Alternating user / assistant turns; an assistant's tool calls are answered in the next user turn."""
    messages: list[Message] = []
    user_content: st.SearchStrategy[Any] = text_parts(carries)
    if carries.images:
        user_content = st.one_of(user_content, image_parts(carries))
    pending: list[ToolCallPart] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        results: list[Part] = [draw(tool_result_for(call, carries)) for call in pending]
        texts = draw(st.lists(user_content, min_size=0 if results else 1, max_size=2))
        messages.append(Message(role="user", content=(*results, *texts)))
        if carries.system_messages and draw(st.booleans()):
            messages.append(Message(role="system", content=(draw(text_parts(carries)),)))
        assistant: list[Part] = []
        if carries.reasoning and draw(st.booleans()):
            assistant.append(draw(reasoning_parts(carries)))
        calls = draw(st.lists(tool_call_parts(carries), max_size=2, unique_by=lambda c: c.id))
        if not calls or carries.assistant_text_and_calls:
            assistant.extend(draw(st.lists(text_parts(carries), min_size=0 if calls else 1, max_size=1)))
        assistant.extend(calls)
        messages.append(Message(role="assistant", content=tuple(assistant)))
        pending = calls
    results = [draw(tool_result_for(call, carries)) for call in pending]
    messages.append(Message(role="user", content=(*results, draw(text_parts(carries)))))
    return tuple(messages)


def tools(carries: Carries) -> st.SearchStrategy[Tool]:
    schema = st.just({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    return st.builds(
        Tool, name=TOOL_NAME, description=st.one_of(st.none(), NON_EMPTY_TEXT), input_schema=schema
    )


@st.composite
def requests(draw: st.DrawFn, carries: Carries = ANTHROPIC) -> Request:
    tool_list = tuple(draw(st.lists(tools(carries), max_size=3, unique_by=lambda t: t.name)))
    choice = (
        None
        if not tool_list
        else draw(
            st.one_of(
                st.none(),
                st.builds(ToolChoice, type=st.sampled_from(["auto", "any", "none"])),
                *(
                    [
                        st.builds(
                            ToolChoice,
                            type=st.just("tool"),
                            name=st.sampled_from([t.name for t in tool_list]),
                        )
                    ]
                    if tool_list
                    else []
                ),
            )
        )
    )
    system_count = st.integers(0, 3 if carries.multiple_system_parts else 1)
    return Request(
        model=draw(st.sampled_from(["claude-opus-4-8", "claude-sonnet-4-5-20250929", "gpt-5.5"])),
        messages=draw(conversations(carries)),
        system=tuple(draw(st.lists(text_parts(carries).filter(lambda p: p.text), min_size=0, max_size=1)))
        if not carries.multiple_system_parts
        else tuple(draw(st.lists(text_parts(carries), max_size=draw(system_count)))),
        max_tokens=draw(st.integers(min_value=1, max_value=128000)),
        temperature=draw(st.one_of(st.none(), st.floats(min_value=0, max_value=1))),
        top_k=draw(st.one_of(st.none(), st.integers(1, 100))) if carries.top_k else None,
        stop_sequences=tuple(draw(st.lists(NON_EMPTY_TEXT, max_size=2))) if carries.stop_sequences else (),
        tools=tool_list,
        tool_choice=choice,
        user_id=draw(st.one_of(st.none(), SAFE_ID)) if carries.user_id else None,
    )


STOP_REASONS: list[StopReason] = ["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal"]


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    counts = st.integers(min_value=0, max_value=200_000)
    return Usage(
        input_tokens=draw(counts),
        cached_input_tokens=draw(counts),
        cache_write_tokens=draw(counts),
        output_tokens=draw(counts),
    )


@st.composite
def responses(draw: st.DrawFn, carries: Carries = ANTHROPIC) -> Response:
    content: list[Part] = []
    if carries.reasoning and draw(st.booleans()):
        content.append(draw(reasoning_parts(carries)))
    content.extend(draw(st.lists(text_parts(Carries(cache_control=False, empty_text=False)), max_size=2)))
    calls = draw(
        st.lists(tool_call_parts(Carries(cache_control=False)), max_size=2, unique_by=lambda c: c.id)
    )
    content.extend(calls)
    stop: StopReason = (
        "tool_use" if calls else draw(st.sampled_from([s for s in STOP_REASONS if s != "tool_use"]))
    )
    return Response(
        id="msg_" + draw(st.from_regex(r"[a-zA-Z0-9]{8,24}", fullmatch=True)),
        model=draw(st.sampled_from(["claude-opus-4-8", "gpt-5.5"])),
        content=tuple(content),
        stop_reason=stop,
        stop_sequence=draw(NON_EMPTY_TEXT) if stop == "stop_sequence" else None,
        usage=draw(usages()),
    )
