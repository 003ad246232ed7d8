"""An incremental Server-Sent Events decoder: bytes in any split, `data` payloads out."""

from __future__ import annotations


class SSEDecoder:
    """Feed it raw bytes as they arrive; it returns the `data` of every event completed so far.

    Handles LF and CRLF line ends, lines and events split across reads, `:` comments, other fields
    (`event:`, `id:`, `retry:`, ignored) and multi-line data (joined with `\\n`, as the SSE spec says).
    """

    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    @property
    def pending(self) -> int:
        """Bytes of an event not complete yet (a bound on one event's size is checked against it)."""
        return len(self._buffer) + sum(len(d) for d in self._data)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Decode `chunk`; return the payloads of the events it completed (possibly none)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        *lines, self._buffer = buffer.split(b"\n")
        events: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # Anything else is a comment (":…") or a field we do not use.
        return events

    def flush(self) -> list[bytes]:
        """At end of stream: the last event, if the server did not end it with a blank line."""
        events = self.feed(b"\n\n") if (self._buffer or self._data) else []
        self._buffer = b""
        return events
