"""Server-Sent Events, read incrementally from a byte stream (https://html.spec.whatwg.org/multipage/
server-sent-events.html#event-stream-interpretation): lines end in CRLF, LF or CR; a blank line ends an event;
`data:` lines are joined with LF; lines starting with `:` are comments. Each event keeps the exact bytes it
came in, so a stream can be passed on minus some events. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event, with the exact bytes it arrived as (blank line included)."""

    event: str | None
    data: str
    raw: bytes


class SSEParser:
    """Feed bytes as they arrive; get back the events completed so far."""

    def __init__(self) -> None:
        self._pending = b""
        self._event_start = 0
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._pending + chunk
        events: list[SSEEvent] = []
        position = 0
        while match := _LINE_END.search(buffer, position):
            line = buffer[position : match.start()]
            position = match.end()
            if line:
                self._field(line.decode("utf-8", errors="replace"))
                continue
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data), buffer[self._event_start : position]))
                self._event_start = position
            # A blank line with nothing to dispatch (after comments, or the LF of a CRLF split after its CR)
            # stays in the bytes of the next event.
            self._event, self._data = None, []
        self._pending = buffer[self._event_start :]
        self._event_start = 0
        # Lines of the unfinished event already read are re-read with the rest of it.
        self._event, self._data = None, []
        return events

    def rest(self) -> bytes:
        """Bytes of an event that never got its closing blank line."""
        return self._pending

    def _field(self, line: str) -> None:
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
