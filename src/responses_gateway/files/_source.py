"""A file's bytes and type, from an `input_file`'s `file_data` (a base64 data URL, or bare base64)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

Kind = Literal["pdf", "text"]
# application/* types that are text (besides text/*, +json and +xml)
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/sql",
        "application/x-sh",
        "application/x-python",
        "application/csv",
        "application/octet-stream",  # unknown: read as text if it is UTF-8 (`plain_text`)
        "",
    }
)


class FileProblem(Exception):
    """Why an input_file cannot be read: the end of a sentence that starts with the part's name."""

    def __init__(self, detail: str, *, code: str = "invalid_file") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True, slots=True)
class Source:
    data: bytes
    media_type: str  # lower case, without parameters; "" when unknown

    def kind(self, filename: str | None) -> Kind:
        """PDF (by type, name or magic bytes) or text; anything else is a FileProblem."""
        name = (filename or "").lower()
        if self.media_type == "application/pdf" or self.data.startswith(b"%PDF-") or name.endswith(".pdf"):
            return "pdf"
        t = self.media_type
        if t.startswith("text/") or t in _TEXT_TYPES or t.endswith(("+json", "+xml")):
            return "text"
        hint = " (images go in input_image parts)" if t.startswith("image/") else ""
        raise FileProblem(
            f"has type '{t[:100]}': only PDF and UTF-8 text files can be read{hint}", code="unsupported_file"
        )

    def data_url(self) -> str:
        encoded = base64.b64encode(self.data).decode()
        return f"data:{self.media_type or 'application/octet-stream'};base64,{encoded}"


def media_type(value: str) -> str:
    """`text/plain; charset=utf-8` -> `text/plain`."""
    return value.split(";", 1)[0].strip().lower()


def split_data_url(file_data: str) -> tuple[str, str]:
    """(media type, base64 payload) of a `data:<type>;base64,<payload>` URL, or ("", it) for bare base64."""
    if not file_data.startswith("data:"):
        return "", file_data
    head, sep, payload = file_data.partition(",")
    if not sep or not head.endswith(";base64"):
        raise FileProblem("has a file_data that is not a base64 data URL (data:<type>;base64,<data>)")
    return media_type(head[5:-7]), payload


def decoded_size(payload: str) -> int:
    """The size of the bytes a base64 payload holds, without decoding it."""
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def from_file_data(file_data: str, max_bytes: int) -> Source:
    kind, payload = split_data_url(file_data)
    if decoded_size(payload) > max_bytes:
        raise FileProblem(too_big(max_bytes), code="file_too_large")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise FileProblem("has a file_data that is not valid base64") from None
    return Source(data, kind)


def too_big(max_bytes: int) -> str:
    return f"is larger than files.max_bytes ({max_bytes} bytes)"
