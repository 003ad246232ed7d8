"""A deterministic OpenAI-compatible Chat Completions server: the backend of every integration test.

Run it with `python -m tests.support.echo_backend --host 127.0.0.1 --port N [--model NAME ...]`
(`--port 0` picks a free port); it prints `echo-backend ready on HOST:PORT` once listening.

The reply is `echo: <text of the last user message>`, streamed one word per chunk. Directives in the
last user message change that (see `_Directives`): `[fail:STATUS]`, `[die-mid-stream]`,
`[bad-chunk]`, `[stall-mid-stream]`, `[slow:MS]`, `[hang]`, `[reasoning]`, `[refuse]`,
`[call:NAME {json args}]`, `[repeat:N]` (the text N times: a long reply from a short request),
`[big:BYTES]` (a completion of that many bytes of "x", 16 KiB a chunk),
the model `echo-auto-tools` calls the request's first tool (its required string arguments set to the
user's text) whenever tools are offered and no tool result came last, as a tool-using model would,
`[leak-auth:STATUS]` (an error echoing the Authorization header received: that status, or with
200 an error event in the stream; a hostile backend). A last `tool` message gives
`tool said: <content>`; a JSON `response_format` gives `{"echo": "<text>"}`. Directives are removed
from the echoed text. `GET /_requests` lists what was received (body, authorization, disconnected);
`POST /_reset` clears it.

`POST /tokenize` counts a chat request as vLLM's does (`{model, messages, tools?}` -> `{count, ...}`),
deterministically (`_token_count`): one token per message (its role), one per whitespace-separated
word of its text and tool-call arguments, one per tool, and one for the generation prompt
(`[slow:MS]` in the last user message delays the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

_SIMPLE_DIRECTIVE = re.compile(
    r"\[(fail:\d{3}|die-mid-stream|bad-chunk|stall-mid-stream|slow:\d+|hang|reasoning|refuse|bad-usage:\w+"
    r"|repeat:\d+|big:\d+|leak-auth:\d{3})\]"
)
_CALL_START = "[call:"
_CALL_NAME = re.compile(r"([A-Za-z0-9_.-]+)\s*")
_WORD = re.compile(r"\S+\s*")
_JSON_DECODER = json.JSONDecoder()
_REASONING_TEXT = "thinking about it"
_REFUSAL_TEXT = "I can't help with that."
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_BIG_PIECE = 16 * 1024


@dataclass
class _Directives:
    """What the last user message asks of the server, and its text with the directives removed."""

    text: str
    fail: int | None = None
    die_mid_stream: bool = False
    bad_chunk: bool = False
    stall_mid_stream: bool = False
    slow_ms: int = 0
    hang: bool = False
    reasoning: bool = False
    refuse: bool = False
    bad_usage: str | None = None  # list | str | details: a malformed `usage` in the stream
    repeat: int = 1
    big: int = 0
    leak_auth: int | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    text_before_calls: str = ""


def _parse_directives(text: str) -> _Directives:
    calls: list[tuple[str, Any]] = []
    kept: list[str] = []
    before_calls: str | None = None
    pos = 0
    while (start := text.find(_CALL_START, pos)) != -1:
        parsed = _parse_call(text, start + len(_CALL_START))
        if parsed is None:
            kept.append(text[pos : start + 1])
            pos = start + 1
            continue
        name, args, end = parsed
        kept.append(text[pos:start])
        if before_calls is None:
            before_calls = "".join(kept)
        calls.append((name, args))
        pos = end
    kept.append(text[pos:])
    rest = "".join(kept)
    d = _Directives(text=rest, calls=calls)
    found = False
    for m in _SIMPLE_DIRECTIVE.finditer(rest):
        found = True
        token = m.group(1)
        if token.startswith("fail:"):
            d.fail = int(token[5:])
        elif token.startswith("slow:"):
            d.slow_ms = int(token[5:])
        elif token == "die-mid-stream":
            d.die_mid_stream = True
        elif token == "bad-chunk":
            d.bad_chunk = True
        elif token == "stall-mid-stream":
            d.stall_mid_stream = True
        elif token == "hang":
            d.hang = True
        elif token == "reasoning":
            d.reasoning = True
        elif token == "refuse":
            d.refuse = True
        elif token.startswith("bad-usage:"):
            d.bad_usage = token[10:]
        elif token.startswith("repeat:"):
            d.repeat = int(token[7:])
        elif token.startswith("big:"):
            d.big = int(token[4:])
        elif token.startswith("leak-auth:"):
            d.leak_auth = int(token[10:])
    if found or calls:
        d.text = _SIMPLE_DIRECTIVE.sub("", rest).strip()
        if d.repeat > 1:
            d.text = " ".join([d.text] * d.repeat)
        d.text_before_calls = _SIMPLE_DIRECTIVE.sub("", before_calls or "").strip()
    return d


def _parse_call(text: str, pos: int) -> tuple[str, Any, int] | None:
    """Parse `NAME {json}]` starting at `pos`; return (name, args, end) or None if malformed."""
    m = _CALL_NAME.match(text, pos)
    if m is None:
        return None
    try:
        args, end = _JSON_DECODER.raw_decode(text, m.end())
    except json.JSONDecodeError:
        return None
    while end < len(text) and text[end].isspace():
        end += 1
    if end >= len(text) or text[end] != "]":
        return None
    return m.group(1), args, end + 1


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _words(text: str) -> list[str]:
    """Split into pieces of one word with its following whitespace; concatenated they give `text`."""
    pieces = _WORD.findall(text)
    if not pieces:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def _tool_names(tools: Any) -> set[str]:
    names: set[str] = set()
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            fn: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
            if isinstance(fn.get("name"), str):
                names.add(fn["name"])
    return names


def _token_count(body: dict[str, Any]) -> int:
    """The deterministic token count of `POST /tokenize` (see the module docstring)."""
    count = 1 if body.get("add_generation_prompt", True) else 0
    for message in body["messages"]:
        if not isinstance(message, dict):
            continue
        count += 1 + len(_text_of(message.get("content")).split())
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                count += len(str(call["function"].get("arguments", "")).split())
    tools = body.get("tools")
    return count + (len(tools) if isinstance(tools, list) else 0)


AUTO_TOOLS_MODEL = "echo-auto-tools"


def _auto_call(tools: Any, text: str) -> list[tuple[str, Any]]:
    """The call a tool-using model makes unasked: the first tool, its required strings set to `text`."""
    for tool in tools if isinstance(tools, list) else []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
            props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
            required = params.get("required") if isinstance(params.get("required"), list) else []
            args = {
                k: text
                for k in required
                if isinstance(props.get(k), dict) and props[k].get("type") == "string"
            }
            return [(fn["name"], args)]
    return []


@dataclass
class _Plan:
    """The whole answer, decided up front from the request."""

    model: str
    content: list[str]
    reasoning: list[str]
    refusal: list[str]
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    usage: dict[str, Any]
    directives: _Directives


def _plan(body: dict[str, Any]) -> _Plan:
    raw_messages = body.get("messages")
    messages: list[dict[str, Any]] = [
        m for m in (raw_messages if isinstance(raw_messages, list) else []) if isinstance(m, dict)
    ]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    d = _parse_directives(_text_of(last_user.get("content")) if last_user else "")
    content: list[str] = []
    reasoning: list[str] = _words(_REASONING_TEXT) if d.reasoning else []
    refusal: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    finish = "stop"
    available = _tool_names(body.get("tools"))
    calls = [(name, args) for name, args in d.calls if name in available]
    if not calls and body.get("model") == AUTO_TOOLS_MODEL:
        calls = _auto_call(body.get("tools"), d.text)
    fmt = body.get("response_format")
    if messages and messages[-1].get("role") == "tool":
        content = _words("tool said: " + _text_of(messages[-1].get("content")))
    elif calls:
        content = _words(d.text_before_calls)
        digest = hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]
        tool_calls = [
            {
                "id": f"call_{i}_{digest}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for i, (name, args) in enumerate(calls)
        ]
        finish = "tool_calls"
    elif d.refuse:
        refusal = _words(_REFUSAL_TEXT)
    elif isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        content = _words(orjson.dumps({"echo": d.text}).decode())
    elif d.big:
        content = ["x" * min(_BIG_PIECE, d.big - i) for i in range(0, d.big, _BIG_PIECE)]
    else:
        content = _words("echo: " + d.text)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not tool_calls and len(content) > limit:
        content = content[:limit]
        finish = "length"
    prompt_tokens = sum(len(_text_of(m.get("content")).split()) for m in messages)
    answer_tokens = sum(len(p.split()) for p in content + refusal)
    answer_tokens += sum(len(c["function"]["arguments"].split()) for c in tool_calls)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": answer_tokens + len(reasoning),
        "total_tokens": prompt_tokens + answer_tokens + len(reasoning),
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": len(reasoning)}
    model = body["model"] if isinstance(body.get("model"), str) else "echo"
    return _Plan(model, content, reasoning, refusal, tool_calls, finish, usage, d)


class EchoServer:
    """The aiohttp application and its request log."""

    def __init__(self, models: list[str], max_recorded: int = 10_000) -> None:
        # Without --model any model name is served and /v1/models lists just "echo".
        self.models = models or ["echo"]
        self.strict_models = bool(models) and "*" not in models
        self.recorded: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_recorded)
        self.counter = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat),
                web.post("/tokenize", self.tokenize),
                web.get("/v1/models", self.list_models),
                web.get("/health", self.health),
                web.get("/_requests", self.get_requests),
                web.post("/_reset", self.reset),
            ]
        )

    def _record(self, request: web.Request, body: Any) -> dict[str, Any]:
        entry = {
            "method": request.method,
            "path": request.path,
            "body": body,
            "authorization": request.headers.get("Authorization"),
            "disconnected": False,
            "finished": False,
        }
        self.recorded.append(entry)
        return entry

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def get_requests(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(list(self.recorded)), content_type="application/json")

    async def reset(self, request: web.Request) -> web.Response:
        self.recorded.clear()
        return web.json_response({"ok": True})

    async def list_models(self, request: web.Request) -> web.Response:
        entry = self._record(request, None)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "echo"} for m in self.models]
        entry["finished"] = True
        return web.Response(
            body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
        )

    async def tokenize(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        entry = self._record(request, body)
        entry["finished"] = True
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages: field required", "invalid_request_error", "messages", None)
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        slow_ms = _parse_directives(_text_of(last_user.get("content")) if last_user else "").slow_ms
        if slow_ms:
            await asyncio.sleep(slow_ms / 1000)
        count = _token_count(body)
        answer = {"count": count, "max_model_len": 32768, "tokens": list(range(count))}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        entry = self._record(request, body)
        try:
            result = await self._chat(request, body)
        except (asyncio.CancelledError, ConnectionError):
            entry["disconnected"] = True
            raise
        entry["finished"] = True
        return result

    async def _chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages: field required", "invalid_request_error", "messages", None)
        model = body.get("model")
        if self.strict_models and model not in self.models:
            msg = f"The model '{model}' does not exist."
            return _error(404, msg, "invalid_request_error", "model", "model_not_found")
        plan = _plan(body)
        d = plan.directives
        if d.fail is not None:
            headers = {"Retry-After": "1"} if d.fail == 429 else None
            kind = _ERROR_TYPES.get(d.fail, "server_error" if d.fail >= 500 else "invalid_request_error")
            return _error(d.fail, "injected failure", kind, None, "injected", headers)
        if d.leak_auth is not None:
            return await _leak_auth(request, d.leak_auth)
        if d.hang:
            await asyncio.Event().wait()  # until the client goes away and aiohttp cancels us
        self.counter += 1
        completion_id = f"chatcmpl-echo{self.counter:08d}"
        if body.get("stream"):
            return await _stream(request, body, plan, completion_id)
        if d.slow_ms:
            await asyncio.sleep(d.slow_ms / 1000)
        if d.die_mid_stream:
            _drop(request)
            return web.Response()
        return web.Response(
            body=orjson.dumps(_completion(plan, completion_id)), content_type="application/json"
        )


def _error(
    status: int,
    message: str,
    kind: str,
    param: str | None,
    code: str | None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


async def _leak_auth(request: web.Request, status: int) -> web.StreamResponse:
    """A hostile backend: its error text echoes the credential it was sent."""
    message = f"invalid credential: {request.headers.get('Authorization')}"
    if status != 200:
        return _error(status, message, _ERROR_TYPES.get(status, "server_error"), None, None)
    resp = web.StreamResponse(headers=_SSE_HEADERS)
    await resp.prepare(request)
    delta = {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
    chunk = {"id": "chatcmpl-leak", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    await resp.write(b"data: " + orjson.dumps({**chunk, "choices": [delta]}) + b"\n\n")  # then, mid-stream:
    await resp.write_eof(b"data: " + orjson.dumps({"error": {"message": message}}) + b"\n\n")
    return resp


def _drop(request: web.Request) -> None:
    """Close the connection under the handler, as a crashing backend would."""
    if request.transport is not None:
        request.transport.close()


def _completion(plan: _Plan, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(plan.content) if (plan.content or not (plan.tool_calls or plan.refusal)) else None,
    }
    if plan.reasoning:
        message["reasoning_content"] = "".join(plan.reasoning)
    if plan.refusal:
        message["refusal"] = "".join(plan.refusal)
    if plan.tool_calls:
        message["tool_calls"] = plan.tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [{"index": 0, "message": message, "finish_reason": plan.finish_reason, "logprobs": None}],
        "usage": plan.usage,
    }


def _stream_deltas(plan: _Plan) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning_content": piece} for piece in plan.reasoning]
    deltas += [{"refusal": piece} for piece in plan.refusal]
    deltas += [{"content": piece} for piece in plan.content]
    for i, call in enumerate(plan.tool_calls):
        args = call["function"]["arguments"]
        half = max(1, len(args) // 2)
        head = {"index": i, "id": call["id"], "type": "function"}
        deltas.append(
            {"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]}
        )
        for piece in (args[:half], args[half:]):
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    return deltas


async def _stream(
    request: web.Request, body: dict[str, Any], plan: _Plan, completion_id: str
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=_SSE_HEADERS)
    await resp.prepare(request)
    created = int(time.time())
    prefix = (
        b'data: {"id":"'
        + completion_id.encode()
        + b'","object":"chat.completion.chunk","created":'
        + str(created).encode()
        + b',"model":'
        + orjson.dumps(plan.model)
    )
    slow = plan.directives.slow_ms / 1000
    content_sent = 0
    for delta in _stream_deltas(plan):
        if slow:
            await asyncio.sleep(slow)
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        await resp.write(prefix + b',"choices":' + orjson.dumps([choice]) + b"}\n\n")
        if delta.get("content"):
            content_sent += 1
            if plan.directives.die_mid_stream and content_sent == 2:
                _drop(request)
                return resp
            if plan.directives.stall_mid_stream and content_sent == 2:
                await asyncio.sleep(3600)  # until the client gives up and goes away
            if plan.directives.bad_chunk and content_sent == 2:  # valid JSON, not a chunk's shape
                await resp.write(prefix + b',"choices":["oops"]}\n\n')
    if slow:
        await asyncio.sleep(slow)
    last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": plan.finish_reason}
    tail = prefix + b',"choices":' + orjson.dumps([last]) + b"}\n\n"
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        tail += prefix + b',"choices":[],"usage":' + orjson.dumps(_usage(plan)) + b"}\n\n"
    await resp.write_eof(tail + _DONE)
    return resp


_BAD_USAGE: dict[str, Any] = {
    "list": [1, 2],
    "str": {"prompt_tokens": "abc", "completion_tokens": 1},
    "details": {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": "none"},
}


def _usage(plan: _Plan) -> Any:
    return _BAD_USAGE[plan.directives.bad_usage] if plan.directives.bad_usage else plan.usage


async def serve(host: str, port: int, models: list[str]) -> None:
    """Listen until SIGTERM or SIGINT, then shut down cleanly."""
    server = EchoServer(models)
    # handler_cancellation: a client going away cancels its handler, which records `disconnected`.
    runner = web.AppRunner(server.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = runner.addresses[0]
    print(f"echo-backend ready on {bound[0]}:{bound[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", action="append", default=[], help="a model to list (repeatable)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.model or []))
    sys.exit(0)


if __name__ == "__main__":
    main()
