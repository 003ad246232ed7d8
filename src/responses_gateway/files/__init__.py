"""`input_file` parts -> what a Chat backend gets (docs/API.md "File inputs").

`FileInputs.convert` reads each `input_file` of the user messages and tool outputs (its `file_data`,
or its `file_url` fetched by `_fetch`) and, by the backend's `file_inputs` setting, makes of it a
text part holding the file's extracted text between `<file name="...">` and `</file>` (`extract`),
the Chat `file` part (`passthrough`), or a 400 (`reject`). A file in a tool output is always
extracted: a Chat tool message holds text only. PDFs and big files are read in worker threads, at most
`files.max_concurrent_extractions` at a time. Every problem is a 400 naming the part.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

from responses_gateway.config import FileInputSettings
from responses_gateway.errors import InvalidRequest
from responses_gateway.files._extract import Bounds, pdf_text, plain_text
from responses_gateway.files._fetch import FetchPolicy, fetch
from responses_gateway.files._source import FileProblem, Source, from_file_data
from responses_gateway.protocol.chat import ChatFile, ChatFileData, ChatText, UserPart
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.items import (
    CustomToolCallOutput,
    FunctionCallOutput,
    InputFile,
    Item,
    Message,
)

__all__ = ["FileInputs", "FileMode"]

FileMode = Literal["extract", "passthrough", "reject"]
T = TypeVar("T")
_INLINE_BYTES = 64 * 1024  # base64 and text smaller than this are decoded on the event loop


class _Spot(NamedTuple):
    """Where an input_file is: its item, the field (`content`, or `output` of a tool output), its index."""

    item: int
    field: str
    pos: int
    part: InputFile


def file_parts(items: Sequence[Item]) -> Iterator[_Spot]:
    """Every input_file of the user messages and tool outputs, in order."""
    for i, item in enumerate(items):
        if isinstance(item, Message) and item.role == "user" and not isinstance(item.content, str):
            parts, field = item.content, "content"
        elif isinstance(item, FunctionCallOutput | CustomToolCallOutput) and not isinstance(item.output, str):
            parts, field = item.output, "output"
        else:
            continue
        for j, part in enumerate(parts):
            if isinstance(part, InputFile):
                yield _Spot(i, field, j, part)


class FileInputs:
    """Converts the input_file parts of a request for its backend, within the `files` bounds."""

    def __init__(self, settings: FileInputSettings) -> None:
        self._settings = settings
        self._bounds = Bounds(settings.max_pages, settings.max_text_chars, settings.extract_timeout_seconds)
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in settings.fetch_allowed_networks)
        self._policy = FetchPolicy(settings.fetch_timeout_seconds, settings.max_bytes, networks)
        self._threads = asyncio.Semaphore(settings.max_concurrent_extractions)

    async def convert(
        self, items: Sequence[Item], mode: FileMode, backend: str, where: str = "input"
    ) -> dict[InputFile, UserPart]:
        """What each input_file of `items` becomes. `where` names the items in errors: `input`
        (the request's, `input[i].content[j]`) or `conversation` (its stored items)."""
        found = list(file_parts(items))
        out: dict[InputFile, UserPart] = {}
        if not found:
            return out
        first = _param(where, found[0])
        if mode == "reject":
            raise InvalidRequest(
                f"Invalid '{first}': the backend of this model ('{shown(backend)}') takes no files "
                "(backends[].file_inputs: reject).",
                param=first,
                code="unsupported_file",
            )
        if len(found) > self._settings.max_files:
            raise InvalidRequest(
                f"Invalid '{where}': at most {self._settings.max_files} input_file parts are read "
                f"for one request (files.max_files), got {len(found)}.",
                param=where,
                code="too_many_files",
            )
        for spot in found:
            part = spot.part
            if part in out:
                continue  # the same file sent twice is read once
            try:
                out[part] = await self._convert(part, "extract" if spot.field == "output" else mode)
            except FileProblem as exc:
                param = _param(where, spot)
                raise InvalidRequest(
                    f"Invalid '{param}' ({shown(_name(part))}): the file {exc.detail}.",
                    param=param,
                    code=exc.code,
                ) from None
        return out

    async def _convert(self, part: InputFile, mode: FileMode) -> UserPart:
        source = await self._source(part)
        if mode == "passthrough":
            given = part.file_data
            if given is not None and given.startswith("data:"):
                url = given
            elif len(source.data) < _INLINE_BYTES:
                url = _typed(source).data_url()
            else:
                url = await self._in_thread(_typed(source).data_url)
            return ChatFile(ChatFileData(url, _name(part)))
        kind = source.kind(part.filename)
        pages: int | None = None
        if kind == "pdf":
            text, pages = await self._in_thread(pdf_text, source.data, self._bounds)
        elif len(source.data) < _INLINE_BYTES:
            text = plain_text(source.data, self._bounds.max_chars)
        else:
            text = await self._in_thread(plain_text, source.data, self._bounds.max_chars)
        return ChatText(_delimited(_name(part), text, pages))

    async def _source(self, part: InputFile) -> Source:
        if part.file_data is not None:
            if len(part.file_data) < _INLINE_BYTES:
                return from_file_data(part.file_data, self._settings.max_bytes)
            return await self._in_thread(from_file_data, part.file_data, self._settings.max_bytes)
        assert part.file_url is not None  # one of the two: checked at the edge
        if not self._settings.fetch_urls:
            raise FileProblem(
                "has a file_url, and this gateway fetches no URLs (files.fetch_urls: false): send "
                "file_data instead",
                code="file_url_refused",
            )
        return await fetch(part.file_url, self._policy)

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker thread. The slot is held until the thread ends, even when the
        request is cancelled meanwhile (the thread cannot be stopped; it ends at its deadline)."""
        await self._threads.acquire()
        try:
            future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except BaseException:
            self._threads.release()
            raise
        future.add_done_callback(self._thread_done)
        return await asyncio.shield(future)

    def _thread_done(self, future: asyncio.Future[Any]) -> None:
        self._threads.release()
        if not future.cancelled():
            future.exception()  # retrieved: a request that left does not leave it unread in the log


def _param(where: str, spot: _Spot) -> str:
    return f"{where}[{spot.item}].{spot.field}[{spot.pos}]" if where == "input" else where


def _name(part: InputFile) -> str:
    """The file's name: the client's, else the last segment of its URL, else `file`."""
    name = part.filename or (part.file_url or "").split("?", 1)[0].rstrip("/").rpartition("/")[2] or "file"
    return "".join(c for c in name if c.isprintable() and c not in '"<>')[:200] or "file"


def _typed(source: Source) -> Source:
    """A source of unknown type that is a PDF says so in its data URL."""
    if not source.media_type and source.data.startswith(b"%PDF-"):
        return Source(source.data, "application/pdf")
    return source


def _delimited(name: str, text: str, pages: int | None) -> str:
    count = f' pages="{pages}"' if pages is not None else ""
    return f'<file name="{name}"{count}>\n{text}\n</file>'
