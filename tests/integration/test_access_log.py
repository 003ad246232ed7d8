"""The access log and request ids, read from the log of a real `responses-gateway serve` process over
the echo backend: one line per request, the request id in every line of the request and in the
response headers, backend errors logged once, secrets never logged; then the same as JSON."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
BACKEND_KEY = "sk-backendSECRETkey-0123456789"
ACCESS = re.compile(
    r"^\S+ \S+ INFO responses_gateway\.access: \[(?P<rid>[^\]]+)\] (?P<method>[A-Z]+) (?P<path>\S+) "
    r"(?P<status>\d{3}) (?P<ms>[\d.]+)ms response_id=(?P<response_id>\S+) "
    r'model=(?P<model>"(?:[^"\\]|\\.)*"|\S+) '
    r"backend=(?P<backend>\S+) store_round_trips=(?P<trips>\d+)$"
)


def _config(tmp: Path, echo: EchoBackend, **extra: Any) -> Path:
    path = write_config(tmp / "config.yaml", echo.base_url, {"store_backend": "memory"}, **extra)
    text = path.read_text().replace("name: echo", f"name: echo\n  api_key: {BACKEND_KEY}")
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def text_gateway(
    tmp_path_factory: pytest.TempPathFactory, echo_backend: EchoBackend
) -> Iterator[GatewayProcess]:
    """One gateway for the text-format tests (each uses request ids of its own)."""
    tmp = tmp_path_factory.mktemp("access")
    with GatewayProcess(_config(tmp, echo_backend), tmp / "gateway.log") as gw:
        yield gw


def _wait_for(log: Path, found: Callable[[list[str]], bool]) -> list[str]:
    """The log's lines once `found` holds for them (the access line follows the answer closely)."""
    deadline = time.monotonic() + 10
    while True:
        lines = log.read_text().splitlines()
        if found(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _access(lines: list[str], rid: str) -> list[re.Match[str]]:
    return [m for line in lines if (m := ACCESS.match(line)) and m["rid"] == rid]


def test_access_lines_and_request_ids(text_gateway: GatewayProcess) -> None:
    gw = text_gateway
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
    raw = client.responses.with_raw_response.create(
        model="m1", input="hello", extra_headers={"X-Request-Id": "client-id.42"}
    )
    first = raw.parse()
    assert raw.headers["x-request-id"] == "client-id.42"
    # a follow-up: the history read and the write, 2 calls of the memory store
    second = client.responses.with_raw_response.create(
        model="m1", input="again", previous_response_id=first.id, extra_headers={"X-Request-Id": "chain-2"}
    ).parse()
    made = httpx.get(f"{gw.base_url}/responses/{first.id}", headers={"X-Request-Id": "bad id!"})
    assert made.status_code == 200
    made_id = made.headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{20}", made_id), made_id
    too_long = httpx.get(f"{gw.url}/health", headers={"X-Request-Id": "a" * 129})
    assert too_long.headers["x-request-id"].startswith("req_")
    chat = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "m2", "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Request-Id": "chat-1"},
    )
    assert chat.status_code == 200 and chat.headers["x-request-id"] == "chat-1"
    ids = {httpx.get(f"{gw.url}/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3

    lines = _wait_for(gw.log, lambda ls: bool(_access(ls, made_id)))
    (line,) = _access(lines, "client-id.42")
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/responses", "200")
    assert (line["response_id"], line["model"], line["backend"], line["trips"]) == (
        first.id,
        "m1",
        "echo",
        "1",
    )
    (line,) = _access(lines, "chain-2")
    assert (line["response_id"], line["trips"]) == (second.id, "2")
    (line,) = _access(lines, "chat-1")  # a pass-through: its model and backend, no response
    assert (line["path"], line["response_id"], line["model"], line["backend"]) == (
        "/v1/chat/completions",
        "-",
        "m2",
        "echo",
    )
    (line,) = _access(lines, made_id)
    assert (line["method"], line["path"], line["status"]) == ("GET", f"/v1/responses/{first.id}", "200")
    assert (line["response_id"], line["model"], line["backend"], line["trips"]) == (first.id, "-", "-", "1")
    # the seed's start-up lines stay exactly as they were: no request id outside a request
    assert any(
        re.fullmatch(
            STAMP + r" INFO responses_gateway: Response API enabled with memory backend",
            x,
        )
        for x in lines
    )


def test_a_stream_is_logged_when_it_ends(text_gateway: GatewayProcess) -> None:
    gw = text_gateway
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
    with client.responses.with_streaming_response.create(
        model="m1", input="[slow:150] one two three", stream=True, extra_headers={"X-Request-Id": "stream-1"}
    ) as raw:
        assert raw.headers["x-request-id"] == "stream-1"
        events = list(raw.parse())
    response_id = events[-1].response.id  # type: ignore[union-attr]
    lines = _wait_for(gw.log, lambda ls: bool(_access(ls, "stream-1")))
    (line,) = _access(lines, "stream-1")
    assert (line["status"], line["response_id"]) == ("200", response_id)
    assert float(line["ms"]) >= 450  # 4 chunks at 150 ms: the line was written when the stream ended


def test_backend_error_logged_once_with_the_request_id(text_gateway: GatewayProcess) -> None:
    gw = text_gateway
    answer = httpx.post(
        f"{gw.base_url}/responses",
        json={"model": "m1", "input": "[fail:500]"},
        headers={"X-Request-Id": "fail-1"},
    )
    assert answer.status_code == 502 and answer.headers["x-request-id"] == "fail-1"
    timeout = httpx.post(
        f"{gw.base_url}/responses",
        json={"model": "m1", "input": "[die-mid-stream] one two three four", "stream": True},
        headers={"X-Request-Id": "cut-1"},
    )
    assert timeout.status_code == 200 and "response.failed" in timeout.text
    lines = _wait_for(gw.log, lambda ls: bool(_access(ls, "fail-1")) and bool(_access(ls, "cut-1")))
    for rid, status in (("fail-1", "502"), ("cut-1", "200")):
        mine = [x for x in lines if f"[{rid}]" in x]
        warnings = [x for x in mine if " WARNING " in x]
        assert len(warnings) == 1, mine
        assert "echo" in warnings[0]
        (line,) = _access(lines, rid)
        assert line["status"] == status


def test_secrets_never_logged(text_gateway: GatewayProcess) -> None:
    gw = text_gateway
    leak = httpx.post(
        f"{gw.base_url}/responses",
        json={"model": "m1", "input": "[leak-auth:500]"},
        headers={"X-Request-Id": "leak-1"},
    )
    assert leak.status_code == 502
    client_key = "sk-clientSECRETkey-abcdefghij"
    missing = httpx.get(
        f"{gw.base_url}/responses/{client_key}",
        headers={"X-Request-Id": "leak-2", "Authorization": f"Bearer {client_key}"},
    )
    assert missing.status_code == 404
    odd = httpx.post(
        f"{gw.base_url}/responses",
        json={"model": "model\nINFO forged line sk-modelSECRETkey-0123456", "input": "x"},
        headers={"X-Request-Id": "leak-3"},
    )
    assert odd.status_code == 200
    lines = _wait_for(gw.log, lambda ls: all(_access(ls, r) for r in ("leak-1", "leak-2", "leak-3")))
    text = "\n".join(lines)
    assert "SECRET" not in text
    assert not any(x.startswith("INFO forged") for x in lines)
    (line,) = _access(lines, "leak-2")
    assert line["path"] == "/v1/responses/***"
    (line,) = _access(lines, "leak-3")  # quoted, on its own line
    assert line["model"] == '"model\\nINFO forged line ***"'


def test_json_log_format(tmp_path: Path, echo: EchoBackend) -> None:
    with GatewayProcess(_config(tmp_path, echo, log_format="json"), tmp_path / "gateway.log") as gw:
        ok = httpx.post(
            f"{gw.base_url}/responses",
            json={"model": "m1", "input": "hi"},
            headers={"X-Request-Id": "json-1"},
        )
        failed = httpx.post(
            f"{gw.base_url}/responses",
            json={"model": "m1", "input": "[fail:503]"},
            headers={"X-Request-Id": "json-2"},
        )
        assert (ok.status_code, failed.status_code) == (200, 502)

        def entries(lines: list[str]) -> list[dict[str, Any]]:
            return [json.loads(x) for x in lines]

        lines = _wait_for(gw.log, lambda ls: sum('"json-2"' in x for x in ls) >= 2)
    records = entries(lines)  # every line is one JSON object
    assert any(
        r["message"] == "Response API enabled with memory backend" and "request_id" not in r for r in records
    )
    access = [r for r in records if r["logger"] == "responses_gateway.access"]
    (one,) = [r for r in access if r["request_id"] == "json-1"]
    assert {
        k: one[k]
        for k in ("method", "path", "status", "response_id", "model", "backend", "store_round_trips")
    } == {
        "method": "POST",
        "path": "/v1/responses",
        "status": 200,
        "response_id": ok.json()["id"],
        "model": "m1",
        "backend": "echo",
        "store_round_trips": 1,
    }
    assert isinstance(one["duration_ms"], float) and one["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", one["time"])
    two = [r for r in records if r.get("request_id") == "json-2"]
    assert [r["level"] for r in two] == ["WARNING", "INFO"]
    assert two[1]["status"] == 502
