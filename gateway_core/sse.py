"""Server-sent events, sans I/O: bytes in, events out, and back.

The decoder follows the WHATWG event-stream rules and tolerates what real upstreams send: comment
lines (``: OPENROUTER PROCESSING``), ``data:`` with or without a space, CRLF / CR / LF line ends, a
byte-order mark, and chunks split at any byte — inside a line, between CR and LF, or in the middle of
a multi-byte UTF-8 character. Feed it whatever the socket gives; it never blocks and never guesses.

Decoding is on the gateway's hot path (once per upstream event, hundreds per answer), so the common
frame — ``event: X`` and one ``data: Y`` line, LF line ends — is handled inline in one loop, and events
are tuples built without keyword handling. Events a caller has no use for (``skip_events``) are dropped
before they are built.

The encoder writes ``event:`` + ``data:`` frames (Claude Code needs the ``event:`` lines, protocols
§6.5) or bare ``data:`` frames for OpenAI-style streams.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, NamedTuple

import orjson

_LINE_END = re.compile(r"\r\n|\r|\n")


class ServerSentEvent(NamedTuple):
    """One dispatched event. ``event`` is ``None`` when the frame named no type.

    A named tuple rather than a dataclass: building one is several times cheaper, and the decoder
    builds one per upstream event.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON (trailing spaces, as Anthropic sends them, are fine)."""
        return orjson.loads(self.data)


_new_event = tuple.__new__
"""Builds a :class:`ServerSentEvent` from its four fields in order, without the keyword-taking ``__new__``."""


class SSEDecoder:
    """Incremental event-stream decoder: :meth:`feed` bytes, get the events completed so far.

    Each chunk is scanned once: only the new text is searched for line ends, and an unfinished line
    is kept as a list of pieces joined when its end arrives, so a long line split over many small
    network chunks costs linear time.

    ``skip_events``: frames whose ``event:`` name is in this set are dropped when they complete,
    without building an event or touching their data (a whole-answer reader can spare itself the
    deltas its upstream repeats in later events). Their ``id:`` and ``retry:`` fields still count.
    """

    __slots__ = (
        "_at_stream_start",
        "_data",
        "_event",
        "_id",
        "_pieces",
        "_retry",
        "_skip",
        "_skip_leading_lf",
        "_skipped",
        "_utf8",
        "_utf8_pending",
    )

    def __init__(self, *, skip_events: frozenset[str] = frozenset()) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._utf8_pending = False
        """The incremental decoder holds the first bytes of a character split between chunks."""
        self._pieces: list[str] = []
        self._skip_leading_lf = False
        self._at_stream_start = True
        self._skip = skip_events
        self._skipped = 0
        self._event: str | None = None
        self._data: list[str] = []
        """The data lines of the frame being read (the list is replaced, never cleared, at dispatch)."""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def skipped(self) -> int:
        """How many frames were dropped for their ``skip_events`` name so far (each one is a sign of
        life from the upstream, though no event came of it)."""
        return self._skipped

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one network chunk; returns the events it completed (often none, sometimes several)."""
        if self._utf8_pending:
            return self.feed_text(self._decode_split(chunk))
        try:
            # A chunk of whole characters (nearly all) decodes in one C call, several times cheaper
            # than the incremental decoder, which is left for chunks that split a character.
            text = chunk.decode()
        except UnicodeDecodeError:
            text = self._decode_split(chunk)
        return self.feed_text(text)

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: complete a last event whose blank line never came (lenient, unlike the spec)."""
        events = self.feed_text(self._utf8.decode(b"", final=True))
        # A line end completes an unfinished line, a blank line dispatches (an LF owed to a CR is eaten).
        events += self.feed_text("\n\n")
        return events

    def _decode_split(self, chunk: bytes) -> str:
        text = self._utf8.decode(chunk)
        self._utf8_pending = bool(self._utf8.getstate()[0])
        return text

    def feed_text(self, text: str) -> list[ServerSentEvent]:
        """Like :meth:`feed` for already-decoded text.

        Lines are applied in one loop — fields set the frame being read, a blank line dispatches it —
        with the frequent fields tested first and the frame's state in locals, because this runs for
        every line of every upstream answer; rare fields go through :meth:`_field`.
        """
        if not text:
            return []
        if self._at_stream_start:
            self._at_stream_start = False
            text = text.removeprefix("\ufeff")
        if self._skip_leading_lf:
            self._skip_leading_lf = False
            text = text.removeprefix("\n")
            if not text:
                return []
        if "\r" in text:
            # The CR that ends this chunk ends its line; an LF opening the next chunk belongs to it.
            self._skip_leading_lf = text[-1] == "\r"
            lines = _LINE_END.split(text)
        else:
            # Nearly every upstream ends lines with LF alone; str.split is several times faster.
            lines = text.split("\n")
        tail = lines.pop()
        events: list[ServerSentEvent] = []
        if lines:
            if self._pieces:
                self._pieces.append(lines[0])
                lines[0] = "".join(self._pieces)
                self._pieces = []
            event = self._event
            data = self._data
            skip = self._skip
            for line in lines:
                if not line:
                    if data:
                        if event not in skip:
                            value = data[0] if len(data) == 1 else "\n".join(data)
                            events.append(_new_event(ServerSentEvent, (value, event, self._id, self._retry)))
                        else:
                            self._skipped += 1
                        data = []
                        event = None
                    elif event is not None:
                        if event not in skip:
                            events.append(_new_event(ServerSentEvent, ("", event, self._id, self._retry)))
                        else:
                            self._skipped += 1
                        event = None
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line.startswith("event: "):
                    event = line[7:]
                elif line[0] != ":":
                    name, colon, value = line.partition(":")
                    if colon and value.startswith(" "):
                        value = value[1:]
                    if name == "data":
                        data.append(value)
                    elif name == "event":
                        event = value
                    else:
                        self._field(name, value)
            self._event = event
            self._data = data
        if tail:
            self._pieces.append(tail)
        return events

    def _field(self, name: str, value: str) -> None:
        if name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)


def encode_event(data: str, event: str | None = None) -> bytes:
    """One frame: optional ``event:`` line, one ``data:`` line per line of ``data``, blank line."""
    head = f"event: {event}\n" if event is not None else ""
    if "\n" in data or "\r" in data:
        body = "".join(f"data: {line}\n" for line in _LINE_END.split(data))
    else:
        body = f"data: {data}\n"
    return f"{head}{body}\n".encode()


def encode_json_event(payload: Any, event: str | None = None) -> bytes:
    """A frame whose data is ``payload`` as compact JSON (JSON text never holds a raw newline)."""
    data = orjson.dumps(payload)
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def encode_comment(text: str = "") -> bytes:
    """A comment frame, used as a keep-alive that every client ignores."""
    return f": {text}\n\n".encode()
