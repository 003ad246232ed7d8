"""`input_file` parts (docs/API.md "File inputs"): PDF and text files become delimited text for the
backend, or its Chat `file` part (`backends[].file_inputs: passthrough`), or a 400 (`reject`);
`file_url`s are fetched within bounds and only from allowed addresses; bad files are 400s naming
the part. Real gateway, real echo backend, the openai SDK."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from responses_gateway.config import settings_from_dict
from tests.support.echo_fixtures import EchoBackend
from tests.support.file_server import serve_files
from tests.support.gateway import Gateway, run_gateway
from tests.support.pdfs import data_url, encrypt_pdf, make_pdf

PDF = make_pdf(["Hello first page", "Second page here"])
PDF_TEXT = '<file name="report.pdf" pages="2">\nHello first page\n\nSecond page here\n</file>'


def _gateway(echo: EchoBackend, files: dict[str, Any] | None = None) -> Iterator[Gateway]:
    """Three backends over the echo server: `pass-*` models passthrough, `no-*` reject, the rest extract."""
    backends = [
        {"name": "pass", "base_url": echo.base_url, "models": ["pass-m"], "file_inputs": "passthrough"},
        {"name": "none", "base_url": echo.base_url, "models": ["no-m"], "file_inputs": "reject"},
        {"name": "echo", "base_url": echo.base_url, "models": ["*"]},
    ]
    settings = settings_from_dict({"backends": backends, "files": files or {}})
    with run_gateway(settings) as gw:
        yield gw


@pytest.fixture
def gw(echo: EchoBackend) -> Iterator[Gateway]:
    yield from _gateway(echo, {"fetch_allowed_networks": ["127.0.0.1/32"], "max_pages": 3})


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def _file_input(text: str, **file: Any) -> list[Any]:
    return [
        {"role": "user", "content": [{"type": "input_text", "text": text}, {"type": "input_file", **file}]}
    ]


def _last_user_content(echo: EchoBackend) -> Any:
    messages = echo.chat_requests()[-1]["body"]["messages"]
    return [m for m in messages if m["role"] == "user"][-1]["content"]


def test_pdf_text_reaches_the_backend_delimited_with_its_name(gw: Gateway, echo: EchoBackend) -> None:
    r = _client(gw).responses.create(
        model="m",
        input=_file_input("Summarise", file_data=data_url(PDF, "application/pdf"), filename="report.pdf"),
    )
    assert r.status == "completed"
    assert _last_user_content(echo) == [
        {"type": "text", "text": "Summarise"},
        {"type": "text", "text": PDF_TEXT},
    ]


def test_text_json_and_bare_base64_files_are_decoded(gw: Gateway, echo: EchoBackend) -> None:
    client = _client(gw)
    cases = [
        (data_url("héllo\nworld".encode(), "text/plain"), "notes.txt", "héllo\nworld"),
        (data_url(b'{"a": 1}', "application/json"), "data.json", '{"a": 1}'),
        (base64.b64encode(b"# Title\n").decode(), "README.md", "# Title\n"),  # no data URL: sniffed
        (base64.b64encode(PDF).decode(), "scan", "Hello first page\n\nSecond page here"),  # %PDF- magic
        (data_url(b"line\n" * 40_000, "text/plain"), "big.txt", "line\n" * 40_000),  # read in a thread
    ]
    for file_data, name, text in cases:
        client.responses.create(model="m", input=_file_input("read", file_data=file_data, filename=name))
        part = _last_user_content(echo)[1]
        assert part["type"] == "text" and part["text"].startswith(f'<file name="{name}"')
        assert part["text"].split("\n", 1)[1] == f"{text}\n</file>"


def _bad(client: OpenAI, content: list[dict[str, Any]], model: str = "m") -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=model, input=[{"role": "user", "content": content}])
    assert exc.value.status_code == 400
    return exc.value


def _error(exc: openai.BadRequestError) -> dict[str, Any]:
    """The error object (the SDK gives the envelope's `error`)."""
    body = exc.body
    assert isinstance(body, dict) and "message" in body
    return body


def test_bad_files_are_400s_naming_the_part(gw: Gateway, echo: EchoBackend) -> None:
    client = _client(gw)
    text = {"type": "input_text", "text": "read"}
    cases: list[tuple[dict[str, Any], str, str | None, str]] = [
        (
            {"file_data": data_url(encrypt_pdf(PDF, "secret"), "application/pdf"), "filename": "locked.pdf"},
            "encrypted",
            "encrypted_file",
            "input[0].content[1]",
        ),
        ({"file_data": data_url(b"%PDF-1.4\nnot really", "application/pdf")}, "malformed", None, ""),
        ({"file_data": data_url(PDF[: len(PDF) // 2], "application/pdf")}, "malformed", None, ""),
        (
            {"file_data": data_url(make_pdf(["a", "b", "c", "d"]), "application/pdf")},
            "files.max_pages",
            None,
            "",
        ),
        ({"file_data": data_url(b"\xff\xfe\x00binary", "application/octet-stream")}, "not UTF-8", None, ""),
        ({"file_data": data_url(b"\x89PNG", "image/png")}, "input_image", "unsupported_file", ""),
        ({"file_data": "data:application/pdf;base64,%%%"}, "not valid base64", None, ""),
        ({"file_data": "data:text/plain,hello"}, "base64 data URL", None, ""),
        ({"file_id": "file-abc"}, "no file store", "unsupported_parameter", "input[0].content[1].file_id"),
        ({"filename": "x.txt"}, "exactly one of", None, ""),
    ]
    for file, words, code, param in cases:
        err = _error(_bad(client, [text, {"type": "input_file", **file}]))
        assert words in err["message"], err
        assert err["param"] == (param or "input[0].content[1]")
        assert err["type"] == "invalid_request_error"
        if code is not None:
            assert err["code"] == code
    assert echo.chat_requests() == []  # none reached the backend


def test_size_and_count_limits(echo: EchoBackend) -> None:
    for gw in _gateway(echo, {"max_bytes": 100, "max_files": 1, "max_text_chars": 20}):
        client = _client(gw)
        big = _error(_bad(client, [{"type": "input_file", "file_data": data_url(b"x" * 101, "text/plain")}]))
        assert "files.max_bytes (100 bytes)" in big["message"] and big["code"] == "file_too_large"
        long = _error(_bad(client, [{"type": "input_file", "file_data": data_url(b"y" * 21, "text/plain")}]))
        assert "files.max_text_chars" in long["message"]
        two = [{"type": "input_file", "file_data": data_url(b"a", "text/plain")}] * 2
        many = _error(_bad(client, two))
        assert "files.max_files" in many["message"] and many["param"] == "input"


def test_passthrough_sends_the_chat_file_part(gw: Gateway, echo: EchoBackend) -> None:
    url = data_url(PDF, "application/pdf")
    _client(gw).responses.create(model="pass-m", input=_file_input("read", file_data=url, filename="r.pdf"))
    assert _last_user_content(echo)[1] == {"type": "file", "file": {"file_data": url, "filename": "r.pdf"}}


def test_reject_backend_is_a_400_naming_the_setting(gw: Gateway, echo: EchoBackend) -> None:
    content = [{"type": "input_file", "file_data": data_url(b"a", "text/plain"), "filename": "a.txt"}]
    err = _error(_bad(_client(gw), content, model="no-m"))
    assert "backends[].file_inputs: reject" in err["message"] and "'none'" in err["message"]
    assert err["param"] == "input[0].content[0]"
    assert echo.chat_requests() == []


def test_file_url_is_fetched_from_an_allowed_network(gw: Gateway, echo: EchoBackend) -> None:
    routes = {
        "/docs/report.pdf": (200, "application/pdf", PDF),
        "/notes": (200, "text/markdown; charset=utf-8", b"- one\n- two"),
        "/moved": (302, "text/plain", b"/docs/report.pdf"),
        "/loop": (302, "text/plain", b"/loop"),
        "/big": (200, "text/plain", b"z" * (10 * 1024 * 1024 + 1)),
    }
    client = _client(gw)
    with serve_files(routes) as root:
        client.responses.create(model="m", input=_file_input("read", file_url=f"{root}/docs/report.pdf"))
        assert _last_user_content(echo)[1]["text"] == PDF_TEXT  # named after the URL's last segment
        client.responses.create(
            model="m", input=_file_input("read", file_url=f"{root}/moved", filename="m.pdf")
        )
        assert "Hello first page" in _last_user_content(echo)[1]["text"]
        client.responses.create(model="m", input=_file_input("read", file_url=f"{root}/notes"))
        assert _last_user_content(echo)[1]["text"] == '<file name="notes">\n- one\n- two\n</file>'
        client.responses.create(model="pass-m", input=_file_input("read", file_url=f"{root}/notes"))
        passed = _last_user_content(echo)[1]["file"]
        assert passed == {"file_data": data_url(b"- one\n- two", "text/markdown"), "filename": "notes"}
        for path, words in [
            ("/missing", "answered HTTP 404"),
            ("/loop", "redirects more than 3 times"),
            ("/big", "files.max_bytes"),
        ]:
            err = _error(_bad(client, [{"type": "input_file", "file_url": root + path}]))
            assert words in err["message"] and err["param"] == "input[0].content[0]"
        err = _error(_bad(client, [{"type": "input_file", "file_url": "ftp://127.0.0.1/x"}]))
        assert "not an http(s) URL" in err["message"]


def test_file_url_to_a_private_address_is_refused_by_default(echo: EchoBackend) -> None:
    with serve_files({"/a.txt": (200, "text/plain", b"secret")}) as root:
        port = root.rsplit(":", 1)[1]
        for gw in _gateway(echo):
            client = _client(gw)
            for url in (f"{root}/a.txt", f"http://localhost:{port}/a.txt", f"http://[::1]:{port}/a.txt"):
                err = _error(_bad(client, [{"type": "input_file", "file_url": url}]))
                assert err["code"] == "file_url_refused" and "files.fetch_allowed_networks" in err["message"]
        for gw in _gateway(echo, {"fetch_urls": False}):
            err = _error(_bad(_client(gw), [{"type": "input_file", "file_url": f"{root}/a.txt"}]))
            assert "files.fetch_urls: false" in err["message"]
    assert echo.chat_requests() == []


def test_stored_history_keeps_the_part_and_a_chain_resends_the_text(
    gateway: Gateway, echo: EchoBackend
) -> None:
    """On every store: input items list the part as sent; a chained turn sends the same text again."""
    client = _client(gateway)
    file = {"type": "input_file", "file_data": data_url(PDF, "application/pdf"), "filename": "report.pdf"}
    r1 = client.responses.create(model="m", input=[{"role": "user", "content": [file]}])
    items = client.responses.input_items.list(r1.id).data
    assert items[0].model_dump(exclude_none=True)["content"] == [file]
    first = _last_user_content(echo)
    client.responses.create(model="m", input="and then?", previous_response_id=r1.id)
    messages = echo.chat_requests()[-1]["body"]["messages"]
    assert messages[0] == {"role": "user", "content": first} and first == PDF_TEXT
    assert messages[-1] == {"role": "user", "content": "and then?"}


def test_a_conversation_reads_its_files_again(gw: Gateway, echo: EchoBackend) -> None:
    client = _client(gw)
    conv = client.conversations.create()
    file = {"type": "input_file", "file_data": data_url(b"fact: 42", "text/plain"), "filename": "f.txt"}
    client.responses.create(model="m", conversation=conv.id, input=[{"role": "user", "content": [file]}])
    client.responses.create(model="m", conversation=conv.id, input="what is the fact?")
    messages = echo.chat_requests()[-1]["body"]["messages"]
    assert messages[0] == {"role": "user", "content": '<file name="f.txt">\nfact: 42\n</file>'}


def test_streaming_with_a_file(gw: Gateway, echo: EchoBackend) -> None:
    with _client(gw).responses.stream(
        model="m", input=_file_input("go", file_data=data_url(PDF, "application/pdf"), filename="report.pdf")
    ) as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and _last_user_content(echo)[1]["text"] == PDF_TEXT


def test_a_background_response_with_a_file_chains(gw: Gateway, echo: EchoBackend) -> None:
    client = _client(gw)
    file = {"type": "input_file", "file_data": data_url(PDF, "application/pdf"), "filename": "report.pdf"}
    r = client.responses.create(model="m", input=[{"role": "user", "content": [file]}], background=True)
    deadline = time.monotonic() + 10
    while r.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, r.status
        time.sleep(0.05)
        r = client.responses.retrieve(r.id)
    assert r.status == "completed"
    client.responses.create(model="m", input="and then?", previous_response_id=r.id)
    assert echo.chat_requests()[-1]["body"]["messages"][0] == {"role": "user", "content": PDF_TEXT}


WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("model", ["m", "pass-m"])
def test_a_file_in_a_tool_output_is_its_text(gw: Gateway, echo: EchoBackend, model: str) -> None:
    """A tool message holds text only: the file is extracted, passthrough backend or not."""
    client = _client(gw)
    r1 = client.responses.create(model=model, input='[call:get_weather {"city": "Oslo"}]', tools=[WEATHER])  # type: ignore[list-item]
    call = r1.output[0]
    assert call.type == "function_call"
    output = [
        {"type": "input_text", "text": "see "},
        {"type": "input_file", "file_data": data_url(b"sunny", "text/plain"), "filename": "w.txt"},
    ]
    r2 = client.responses.create(
        model=model,
        previous_response_id=r1.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": output}],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    tool = echo.chat_requests()[-1]["body"]["messages"][-1]
    assert tool == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": 'see <file name="w.txt">\nsunny\n</file>',
    }
    assert r2.output_text == 'tool said: see <file name="w.txt">\nsunny\n</file>'
    bad = [{"type": "input_file", "file_id": "file-1"}]
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(
            model=model,
            previous_response_id=r1.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": bad}],  # type: ignore[list-item]
        )
    assert _error(exc.value)["param"] == "input[0].output[0].file_id"
