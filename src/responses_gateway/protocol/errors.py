"""The one error of the protocol layer, and `shown`, the one way a client's value is echoed in a message."""

from __future__ import annotations

ECHO_CHARS = 64  # a client's value is echoed at most this long in an error message


def shown(value: object, limit: int = ECHO_CHARS) -> str:
    """A client's value as echoed in an error message: its first `limit` characters, then "…".

    Every message that quotes client input goes through here, so an 8 MB id comes back as 65
    characters, never whole."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class RequestInvalid(ValueError):
    """A 400 in the OpenAI envelope: `param` is the path (`input[3].content[0].image_url`)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
