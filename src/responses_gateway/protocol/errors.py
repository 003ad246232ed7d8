"""The one error of the protocol layer: a request that is not valid, with the exact path at fault."""

from __future__ import annotations


class RequestInvalid(ValueError):
    """A 400 in the OpenAI envelope: `param` is the path (`input[3].content[0].image_url`)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
