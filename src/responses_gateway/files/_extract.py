"""The text of a file's bytes: PDF pages through pypdf, UTF-8 text decoded. Synchronous CPU work,
run in a worker thread by `FileInputs`; bounded by pages, characters and a deadline between pages."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader

from responses_gateway.files._source import FileProblem

log = logging.getLogger("responses_gateway.files")


@dataclass(frozen=True, slots=True)
class Bounds:
    max_pages: int
    max_chars: int
    seconds: float


def pdf_text(data: bytes, bounds: Bounds) -> tuple[str, int]:
    """The text of a PDF's pages (joined by blank lines) and its page count."""
    deadline = time.monotonic() + bounds.seconds
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise FileProblem("is an encrypted PDF: send it decrypted", code="encrypted_file")
        count = len(reader.pages)
        if count > bounds.max_pages:
            raise FileProblem(f"has {count} pages, more than files.max_pages ({bounds.max_pages})")
        pages: list[str] = []
        chars = 0
        for page in reader.pages:
            if time.monotonic() > deadline:
                raise FileProblem(
                    f"took longer than files.extract_timeout_seconds ({bounds.seconds:g} s) to read"
                )
            text = page.extract_text()
            chars += len(text) + 2
            if chars > bounds.max_chars:
                raise FileProblem(_too_long(bounds.max_chars))
            pages.append(text)
    except FileProblem:
        raise
    except Exception as exc:
        # the bytes are the client's and may be anything: whatever pypdf raises on them (its own
        # errors, and ValueError, KeyError, RecursionError... on broken structures) means "not a
        # readable PDF", never a 500
        log.debug("an input_file is not a readable PDF: %r", exc)
        raise FileProblem("could not be read as a PDF (it is malformed or truncated)") from None
    return "\n\n".join(pages), count


def plain_text(data: bytes, max_chars: int) -> str:
    """UTF-8 text (a BOM is dropped); NUL bytes mean it is not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("is not UTF-8 text (only PDF and UTF-8 text files can be read)") from None
    if "\x00" in text:
        raise FileProblem("is binary, not text (only PDF and UTF-8 text files can be read)")
    if len(text) > max_chars:
        raise FileProblem(_too_long(max_chars))
    return text


def _too_long(max_chars: int) -> str:
    return f"has more text than files.max_text_chars ({max_chars} characters)"
