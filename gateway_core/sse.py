"""Server-sent events, sans I/O: bytes in, events out, and back.

The decoder follows the WHATWG event-stream rules and tolerates what real upstreams send: comment
lines (``: OPENROUTER PROCESSING``), ``data:`` with or without a space, CRLF / CR / LF line ends, a
byte-order mark, and chunks split at any byte — inside a line, between CR and LF, or in the middle of
a multi-byte UTF-8 character. Feed it whatever the socket gives; it never blocks and never guesses.

The encoder writes ``event:`` + ``data:`` frames (Claude Code needs the ``event:`` lines, protocols
§6.5) or bare ``data:`` frames for OpenAI-style streams.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

import orjson

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``event`` is ``None`` when the frame named no type."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON (trailing spaces, as Anthropic sends them, are fine)."""
        return orjson.loads(self.data)


class SSEDecoder:
    """Incremental event-stream decoder: :meth:`feed` bytes, get the events completed so far.

    Each chunk is scanned once: only the new text is searched for line ends, and an unfinished line
    is kept as a list of pieces joined when its end arrives, so a long line split over many small
    network chunks costs linear time.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces: list[str] = []
        self._skip_leading_lf = False
        self._at_stream_start = True
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one network chunk; returns the events it completed (often none, sometimes several)."""
        return self.feed_text(self._utf8.decode(chunk))

    def feed_text(self, text: str) -> list[ServerSentEvent]:
        """Like :meth:`feed` for already-decoded text."""
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
        # The CR that ends this chunk ends its line; an LF opening the next chunk belongs to it.
        self._skip_leading_lf = text.endswith("\r")
        # Nearly every upstream ends lines with LF alone; str.split is several times faster than the regex.
        lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
        tail = lines.pop()
        events: list[ServerSentEvent] = []
        if lines:
            if self._pieces:
                self._pieces.append(lines[0])
                lines[0] = "".join(self._pieces)
                self._pieces = []
            for line in lines:
                if not line:
                    if (event := self._dispatch()) is not None:
                        events.append(event)
                elif line[0] != ":":
                    self._field(line)
        if tail:
            self._pieces.append(tail)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: complete a last event whose blank line never came (lenient, unlike the spec)."""
        events = self.feed_text(self._utf8.decode(b"", final=True))
        if self._pieces:
            line = "".join(self._pieces)
            self._pieces = []
            if line[0] != ":":
                self._field(line)
        if (event := self._dispatch()) is not None:
            events.append(event)
        return events

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data and self._event is None:
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(data=data, event=self._event, id=self._id, retry=self._retry)
        self._event = None
        self._data = []
        return event


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
