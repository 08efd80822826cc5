"""The SSE decoder against recorded streams split at every byte, and the encoder's framing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core.sse import ServerSentEvent, SSEDecoder, encode_comment, encode_event, encode_json_event
from tests.fixtures import fixture_files, load_sse

RECORDED_STREAMS = [
    path
    for folder in ("anthropic", "openai_chat", "openrouter", "responses", "codex")
    for path in fixture_files(folder, "*.sse")
]


def decode_all(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("path", RECORDED_STREAMS, ids=lambda p: p.name)
def test_recorded_stream_decodes_the_same_whatever_the_chunking(path: object) -> None:
    body = load_sse(path)  # type: ignore[arg-type]
    whole = decode_all([body])
    assert whole, "a recorded stream has events"
    byte_by_byte = decode_all([body[i : i + 1] for i in range(len(body))])
    assert byte_by_byte == whole


@pytest.mark.parametrize("path", RECORDED_STREAMS, ids=lambda p: p.name)
def test_recorded_stream_decodes_the_same_with_crlf_line_ends(path: object) -> None:
    body = load_sse(path)  # type: ignore[arg-type]
    crlf = body.replace(b"\n", b"\r\n")
    assert decode_all([crlf[i : i + 7] for i in range(0, len(crlf), 7)]) == decode_all([body])


def test_every_recorded_data_payload_is_json_or_done() -> None:
    for path in RECORDED_STREAMS:
        for event in decode_all([load_sse(path)]):
            if event.data != "[DONE]":
                event.json()


def test_comment_lines_are_skipped() -> None:
    events = decode_all([b': OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {"a":1}\n\n'])
    assert events == [ServerSentEvent(data='{"a":1}')]


def test_data_with_and_without_space_after_colon() -> None:
    events = decode_all([b'data:{"a":1}\n\ndata: {"a":1}\n\n'])
    assert [e.data for e in events] == ['{"a":1}', '{"a":1}']


def test_trailing_spaces_after_json_are_kept_and_still_parse() -> None:
    (event,) = decode_all([b'event: content_block_stop\ndata: {"type":"x"}       \n\n'])
    assert event.event == "content_block_stop"
    assert event.json() == {"type": "x"}


def test_multibyte_character_split_inside_its_bytes() -> None:
    payload = 'data: {"text":"caf\u00e9 \u2603 \U0001f600"}\n\n'.encode()
    events = decode_all([payload[i : i + 1] for i in range(len(payload))])
    assert events[0].json() == {"text": "caf\u00e9 \u2603 \U0001f600"}


def test_cr_and_lf_of_one_line_end_in_different_chunks() -> None:
    events = decode_all([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert events == [ServerSentEvent(data="a\nb")]


def test_lone_cr_line_ends() -> None:
    assert decode_all([b"event: x\rdata: 1\r\r"]) == [ServerSentEvent(data="1", event="x")]


def test_multiple_data_lines_join_with_newline() -> None:
    assert decode_all([b"data: a\ndata: b\n\n"]) == [ServerSentEvent(data="a\nb")]


def test_id_and_retry_fields() -> None:
    (event,) = decode_all([b"id: 7\nretry: 1500\ndata: x\n\n"])
    assert (event.id, event.retry) == ("7", 1500)


def test_byte_order_mark_at_stream_start_is_ignored() -> None:
    assert decode_all([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [ServerSentEvent(data="x")]


def test_flush_completes_a_last_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [ServerSentEvent(data="[DONE]")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode_all([b"\n\n\r\n\n"]) == []


def test_encoder_frames_with_event_line() -> None:
    assert encode_event('{"type":"ping"}', "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encoder_splits_multiline_data() -> None:
    assert encode_event("a\nb") == b"data: a\ndata: b\n\n"


def test_json_encoder_and_comment() -> None:
    assert encode_json_event({"a": [1]}, "x") == b'event: x\ndata: {"a":[1]}\n\n'
    assert encode_json_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert encode_comment("keep-alive") == b": keep-alive\n\n"


@given(
    events=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"])),
            st.one_of(st.none(), st.from_regex(r"[a-z_.]{1,20}", fullmatch=True)),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_encode_then_decode_at_any_split_is_identity(
    events: list[tuple[str, str | None]], cuts: list[int]
) -> None:
    stream = b"".join(encode_event(data, name) for data, name in events)
    decoded = decode_all(split_at(stream, [c for c in cuts if c <= len(stream)]))
    assert [(e.data, e.event) for e in decoded] == events


# --- events a caller skips ------------------------------------------------------------------------------

DELTA_NAMES = frozenset({"delta"})


def test_skipped_events_are_dropped_and_the_others_kept() -> None:
    frames = [("1", "start"), ("2", "delta"), ("3", "delta"), ("4", "stop")]
    stream = b"".join(encode_event(data, name) for data, name in frames)
    decoder = SSEDecoder(skip_events=DELTA_NAMES)

    events = decoder.feed(stream) + decoder.flush()

    assert events == [ServerSentEvent(data="1", event="start"), ServerSentEvent(data="4", event="stop")]
    assert decoder.skipped == 2


def test_a_frame_is_skipped_by_its_name_whatever_the_order_of_its_fields() -> None:
    decoder = SSEDecoder(skip_events=DELTA_NAMES)

    assert decoder.feed(b"data: 2\nevent: delta\n\ndata: 3\n\n") == [ServerSentEvent(data="3")]


def test_the_id_of_a_skipped_frame_still_becomes_the_last_event_id() -> None:
    decoder = SSEDecoder(skip_events=DELTA_NAMES)

    (event,) = decoder.feed(b"id: 1\nevent: delta\ndata: x\n\nevent: stop\ndata: y\n\n")

    assert (event.event, event.id) == ("stop", "1")


def test_comments_are_not_counted_as_skipped_frames() -> None:
    decoder = SSEDecoder(skip_events=DELTA_NAMES)

    assert decoder.feed(b": keep-alive\n\n: keep-alive\n\n") == []
    assert decoder.skipped == 0


@given(
    events=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"])),
            st.one_of(st.none(), st.sampled_from(["start", "delta", "stop"])),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_skipping_at_any_split_equals_filtering_the_decoded_events(
    events: list[tuple[str, str | None]], cuts: list[int]
) -> None:
    stream = b"".join(encode_event(data, name) for data, name in events)
    chunks = split_at(stream, [c for c in cuts if c <= len(stream)])
    decoder = SSEDecoder(skip_events=DELTA_NAMES)

    kept = [event for chunk in chunks for event in decoder.feed(chunk)] + decoder.flush()

    assert kept == [event for event in decode_all([stream]) if event.event not in DELTA_NAMES]
    assert decoder.skipped == sum(name == "delta" for _, name in events)


# --- decoding details of the fast paths -----------------------------------------------------------------


def test_an_invalid_byte_becomes_a_replacement_character_and_decoding_goes_on() -> None:
    events = decode_all([b"data: a\xffb\n\n", b"data: caf\xc3", b"\xa9\n\n", b"data: ok\n\n"])

    assert [event.data for event in events] == ["a\ufffdb", "caf\u00e9", "ok"]


def test_a_character_cut_by_the_end_of_the_stream_becomes_a_replacement_character() -> None:
    assert decode_all([b"data: caf\xc3"]) == [ServerSentEvent(data="caf\ufffd")]


def test_an_event_is_an_immutable_record_with_its_json() -> None:
    event = ServerSentEvent(data='{"a": 1}', event="x")

    assert (event.data, event.event, event.id, event.retry) == ('{"a": 1}', "x", None, None)
    assert event.json() == {"a": 1}
    with pytest.raises(AttributeError):
        event.data = "changed"  # type: ignore[misc]
