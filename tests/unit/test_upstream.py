"""The shared upstream HTTP machinery: the client, bounded sends and reads, held and followed answers.

Streams are the recorded OpenRouter answer (fixtures/openrouter), served through ``httpx.MockTransport``
in chunks, with a stall or a broken connection where a test needs one. No socket is opened.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import aiohttp
import anyio
import anyio.lowlevel
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway_core.formats.openai_chat import StreamDecoder
from gateway_core.sse import ServerSentEvent, SSEDecoder, encode_event
from gateway_core.streaming import ErrorEvent, MessageDelta, MessageStart, MessageStop, StreamEvent
from gateway_core.upstream import (
    CommittedAnswer,
    EventReader,
    EventTimeout,
    close_response,
    create_http_client,
    follow_committed,
    read_body,
    read_until_committed,
    send_streaming,
    transport_error,
)
from tests.fixtures import load_sse
from tests.unit._bodies import Body, pieces

pytestmark = pytest.mark.anyio

HOST = "api.kilo.ai"
URL = "https://api.kilo.ai/api/gateway/chat/completions"
RECORDED = load_sse("openrouter/openrouter_stream_text_kimi_k2.5.sse")
KEEPALIVE = b": OPENROUTER PROCESSING\n\n"

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


async def post(handler: Handler, seconds: float = 5) -> httpx.Response:
    """``POST /chat/completions`` through :func:`send_streaming` to a mock upstream run by ``handler``."""
    return await send_streaming(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        URL,
        headers={},
        body=b"{}",
        deadline=anyio.current_time() + seconds,
        upstream=HOST,
        what="POST /chat/completions",
    )


async def open_body(body: Body) -> httpx.Response:
    return await post(lambda request: httpx.Response(200, stream=body))


def decoder() -> StreamDecoder:
    return StreamDecoder(provider="kilo", model="kimi-k2.5")


def all_events(data: bytes) -> list[StreamEvent]:
    """The canonical events of a whole stream, decoded in one go."""
    sse = SSEDecoder()
    whole = decoder()
    events = [event for frame in [*sse.feed(data), *sse.flush()] for event in whole.feed(frame)]
    return events + whole.close()


# --- the client and wire failures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    connect_timeout: float = 3.0
    first_event_timeout: float = 20.0
    idle_timeout: float = 45.0


async def test_the_shared_client_is_built_without_opening_anything() -> None:
    http = create_http_client(Timeouts(), max_connections=8)

    transport = http._transport
    assert isinstance(transport, AiohttpTransport)
    assert not isinstance(transport.client, aiohttp.ClientSession), "it is made on the first request"
    await http.aclose()


async def test_the_clients_own_timeouts_only_back_up_the_event_deadlines() -> None:
    http = create_http_client(Timeouts(), max_connections=8)

    assert http.timeout.connect == 3.0
    assert http.timeout.read == http.timeout.write == 45.0, "the longer of the two event deadlines"
    assert http.timeout.pool == 20.0
    await http.aclose()


def test_connection_failures_and_read_timeouts_map_to_upstream_errors() -> None:
    refused = transport_error(httpx.ConnectError("refused"), "POST /chat/completions", HOST)
    slow = transport_error(httpx.ReadTimeout("slow"), "reading the answer", HOST)

    assert isinstance(refused, UpstreamError)
    assert refused.message == "POST /chat/completions: could not reach api.kilo.ai (refused)"
    assert isinstance(slow, UpstreamTimeoutError)
    assert slow.message == "reading the answer: api.kilo.ai did not answer in time (slow)"


async def test_a_refused_connection_names_the_call_and_the_upstream() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(UpstreamError, match=r"^POST /chat/completions: could not reach api\.kilo\.ai"):
        await post(refuse)


async def test_headers_that_do_not_come_by_the_deadline_are_a_timeout() -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with pytest.raises(UpstreamTimeoutError, match=r"^api\.kilo\.ai sent no answer in time$"):
        await post(stall, seconds=0.05)


async def test_a_large_error_body_is_cut_at_the_limit() -> None:
    response = await open_body(Body([b"<html>" + b"x" * 100] * 10))

    assert await read_body(response, anyio.current_time() + 5, limit=64) == (b"<html>" + b"x" * 100)[:64]
    await close_response(response)


async def test_an_error_body_is_whatever_arrived_when_the_time_ran_out() -> None:
    response = await open_body(Body([b'{"error":'], then="stall"))

    assert await read_body(response, anyio.current_time() + 0.05) == b'{"error":'
    await close_response(response)


async def test_a_response_is_closed_even_from_a_cancelled_scope() -> None:
    body = Body([RECORDED], then="stall")
    response = await open_body(body)

    with anyio.CancelScope() as scope:
        scope.cancel()
        await close_response(response)

    assert body.closed


# --- reading events -----------------------------------------------------------------------------------


async def test_events_split_across_chunks_are_read_whole() -> None:
    reader = EventReader(await open_body(Body(pieces(RECORDED, 7))), HOST)
    sse = SSEDecoder()
    expected = [*sse.feed(RECORDED), *sse.flush()]

    read: list[ServerSentEvent] = []
    while (event := await reader.next(anyio.current_time() + 5)) is not None:
        read.append(event)

    assert read == expected
    assert await reader.next(anyio.current_time() + 5) is None, "the end stays the end"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_an_encoded_answer_is_decoded_before_its_events_are_read(encoding: str) -> None:
    compress = gzip.compress if encoding == "gzip" else zlib.compress
    packed = compress(RECORDED)
    headers = {"content-encoding": encoding}
    response = await post(
        lambda request: httpx.Response(200, headers=headers, stream=Body(pieces(packed, 50)))
    )
    reader = EventReader(response, HOST)
    sse = SSEDecoder()

    read: list[ServerSentEvent] = []
    while (event := await reader.next(anyio.current_time() + 5)) is not None:
        read.append(event)

    assert read == [*sse.feed(RECORDED), *sse.flush()]


async def test_keep_alive_comments_do_not_count_as_events() -> None:
    reader = EventReader(await open_body(Body([KEEPALIVE] * 3, then="stall")), HOST)

    with pytest.raises(EventTimeout):
        await reader.next(anyio.current_time() + 0.05)


async def test_a_broken_connection_is_an_upstream_error_naming_the_upstream() -> None:
    reader = EventReader(await open_body(Body([KEEPALIVE], then="break")), HOST)

    with pytest.raises(UpstreamError, match=r"^reading the answer: could not reach api\.kilo\.ai"):
        await reader.next(anyio.current_time() + 5)


RESPONSES = load_sse("responses/responses_stream_text.sse")
TEXT_DELTA = "response.output_text.delta"


class Dripping(Body):
    """A body whose chunks come ``gap`` seconds apart."""

    def __init__(self, chunks: Sequence[bytes], gap: float, then: str = "end") -> None:
        super().__init__(chunks, then)
        self.gap = gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await anyio.sleep(self.gap)
            yield chunk
        if self.then == "stall":
            await anyio.sleep_forever()


def frames_named(data: bytes, name: str) -> list[bytes]:
    """The frames of ``data`` whose event is ``name``, re-encoded one per chunk."""
    sse = SSEDecoder()
    return [encode_event(e.data, e.event) for e in [*sse.feed(data), *sse.flush()] if e.event == name]


async def test_skipped_events_are_never_handed_out() -> None:
    skip = frozenset({TEXT_DELTA})
    reader = EventReader(await open_body(Body(pieces(RESPONSES, 7))), HOST, skip_events=skip)
    sse = SSEDecoder()
    everything = [*sse.feed(RESPONSES), *sse.flush()]

    read: list[ServerSentEvent] = []
    while (event := await reader.next(anyio.current_time() + 5)) is not None:
        read.append(event)

    assert read == [event for event in everything if event.event != TEXT_DELTA]
    assert len(read) < len(everything)


async def test_skipped_events_keep_a_long_answer_alive() -> None:
    deltas = frames_named(RESPONSES, TEXT_DELTA) * 4
    last = encode_event('{"type":"response.completed"}', "response.completed")
    body = Dripping([*deltas[:8], last], gap=0.05)
    reader = EventReader(await open_body(body), HOST, skip_events=frozenset({TEXT_DELTA}))

    event = await reader.next_within(0.25)  # 0.45 s of deltas: alive, though no event came of them

    assert event is not None
    assert event.event == "response.completed"


async def test_an_answer_silent_after_its_skipped_events_still_times_out() -> None:
    deltas = frames_named(RESPONSES, TEXT_DELTA)[:3]
    reader = EventReader(
        await open_body(Dripping(deltas, gap=0.02, then="stall")), HOST, skip_events=frozenset({TEXT_DELTA})
    )

    with pytest.raises(EventTimeout):
        await reader.next(anyio.current_time() + 0.1)


async def test_the_events_of_one_chunk_are_buffered_and_taken_without_a_read() -> None:
    reader = EventReader(await open_body(Body([RESPONSES], then="stall")), HOST)
    sse = SSEDecoder()
    expected = [*sse.feed(RESPONSES), *sse.flush()]

    first = await reader.next(anyio.current_time() + 5)
    rest = list(iter(reader.buffered, None))

    assert [first, *rest] == expected
    assert reader.buffered() is None
    reader.close()


# --- holding and following an answer ------------------------------------------------------------------


async def test_an_answer_is_held_until_its_first_content_event() -> None:
    reader = EventReader(await open_body(Body(pieces(RECORDED, 64))), HOST)

    held = await read_until_committed(
        reader, decoder(), deadline=anyio.current_time() + 5, idle_timeout=5, upstream=HOST
    )

    assert isinstance(held[0], MessageStart)
    assert not isinstance(held[-1], MessageStart)
    assert held == all_events(RECORDED)[: len(held)]


async def test_an_answer_that_never_starts_fails_by_its_first_event_deadline() -> None:
    reader = EventReader(await open_body(Body([KEEPALIVE] * 3, then="stall")), HOST)

    with pytest.raises(UpstreamTimeoutError, match=r"^api\.kilo\.ai did not send its first event in time$"):
        await read_until_committed(
            reader, decoder(), deadline=anyio.current_time() + 0.05, idle_timeout=5, upstream=HOST
        )


async def test_an_in_band_error_before_the_commit_is_raised() -> None:
    failure = b'data: {"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min"}}\n\n'
    reader = EventReader(await open_body(Body([KEEPALIVE, failure])), HOST)

    with pytest.raises(GatewayError, match="Rate limit exceeded"):
        await read_until_committed(
            reader, decoder(), deadline=anyio.current_time() + 5, idle_timeout=5, upstream=HOST
        )


async def commit(body: Body) -> CommittedAnswer:
    """The answer of ``body``, read until it commits."""
    response = await open_body(body)
    reader, stream = EventReader(response, HOST), decoder()
    held = await read_until_committed(
        reader, stream, deadline=anyio.current_time() + 5, idle_timeout=5, upstream=HOST
    )
    return CommittedAnswer(response, reader, stream, held)


async def collect(stream: AsyncGenerator[StreamEvent, None]) -> list[StreamEvent]:
    async with aclosing(stream):
        return [event async for event in stream]


async def follow(answer: CommittedAnswer, idle_timeout: float = 5) -> list[StreamEvent]:
    """What :func:`follow_committed` yields after the commit."""
    assert answer.reader is not None
    assert answer.decoder is not None
    return await collect(
        follow_committed(answer.reader, answer.decoder, idle_timeout=idle_timeout, upstream=HOST)
    )


async def test_held_and_followed_events_are_the_whole_answer() -> None:
    answer = await commit(Body(pieces(RECORDED, 64)))

    rest = await follow(answer)

    assert answer.held + rest == all_events(RECORDED)
    assert isinstance(rest[-1], MessageStop)


async def test_following_stops_at_the_end_of_the_answer_without_waiting_for_the_body_to_end() -> None:
    answer = await commit(Body([RECORDED], then="stall"))

    rest = await follow(answer, idle_timeout=0.05)

    assert isinstance(rest[-1], MessageStop)
    assert not any(isinstance(event, ErrorEvent) for event in rest)


async def test_a_silence_after_the_commit_ends_the_stream_with_an_in_band_timeout() -> None:
    answer = await commit(Body([RECORDED[: len(RECORDED) // 2]], then="stall"))

    rest = await follow(answer, idle_timeout=0.05)

    assert isinstance(rest[-1], ErrorEvent)
    assert isinstance(rest[-1].error, UpstreamTimeoutError)
    assert rest[-1].error.message == "api.kilo.ai sent nothing for 0.05 s; the answer was cut short"


async def test_a_broken_connection_after_the_commit_ends_the_stream_with_an_in_band_error() -> None:
    answer = await commit(Body([RECORDED[: len(RECORDED) // 2]], then="break"))

    rest = await follow(answer)

    assert isinstance(rest[-1], ErrorEvent)
    assert "could not reach api.kilo.ai" in rest[-1].error.message
    assert not any(isinstance(event, MessageStop) for event in rest)


async def passed_on(answer: CommittedAnswer, idle_timeout: float = 5) -> list[StreamEvent]:
    """What :meth:`CommittedAnswer.events` yields."""
    return await collect(answer.events(idle_timeout=idle_timeout, upstream=HOST))


async def test_a_committed_answer_passes_on_what_it_held_then_the_rest() -> None:
    answer = await commit(Body(pieces(RECORDED, 64)))

    events = await passed_on(answer)

    assert events == all_events(RECORDED)
    assert answer.completed
    assert answer.finished
    assert answer.usage is not None
    assert answer.usage == next(event.usage for event in events if isinstance(event, MessageDelta))


async def test_a_committed_answer_cut_short_is_finished_but_not_completed() -> None:
    answer = await commit(Body([RECORDED[: len(RECORDED) // 2]], then="stall"))

    events = await passed_on(answer, idle_timeout=0.05)

    assert isinstance(events[-1], ErrorEvent)
    assert answer.finished
    assert not answer.completed


async def test_an_answer_held_whole_is_passed_on_without_reading_more() -> None:
    body = Body([b"never read"], then="break")
    whole = all_events(RECORDED)
    answer = CommittedAnswer(await open_body(body), None, None, whole, completed=True, finished=True)

    assert await passed_on(answer) == whole


async def test_a_connection_the_upstream_dropped_while_idle_is_replaced_once() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.RemoteProtocolError("Server disconnected")
        return httpx.Response(200, content=b"data: {}\n\n")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await send_streaming(
            client,
            "http://upstream.test/x",
            headers={},
            body=b"{}",
            deadline=anyio.current_time() + 5,
            upstream=HOST,
            what="test",
        )
        await response.aclose()
    assert (response.status_code, len(attempts)) == (200, 2)


async def test_a_second_connection_failure_is_the_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UpstreamError, match="could not reach"):
            await send_streaming(
                client,
                "http://upstream.test/x",
                headers={},
                body=b"{}",
                deadline=anyio.current_time() + 5,
                upstream=HOST,
                what="test",
            )


async def batches_of(answer: CommittedAnswer) -> list[list[StreamEvent]]:
    batches = []
    try:
        while batch := await answer.next_batch(idle_timeout=5, upstream=HOST):
            batches.append(batch)
    finally:
        answer.close()
    return batches


async def test_batches_hold_every_event_one_read_completed() -> None:
    answer = await commit(Body([RECORDED]))  # the whole answer in one read

    batches = await batches_of(answer)

    assert [event for batch in batches for event in batch] == all_events(RECORDED)
    assert len(batches) == 2, "what was held, then everything else the one read decoded"
    assert answer.completed


async def test_a_batch_ends_at_the_answers_last_event() -> None:
    late = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"late"}}]}\n\n'
    answer = await commit(Body([RECORDED + late]))

    events = [event for batch in await batches_of(answer) for event in batch]

    assert events == all_events(RECORDED)
    assert isinstance(events[-1], MessageStop)
