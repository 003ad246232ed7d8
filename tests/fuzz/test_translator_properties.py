"""Hypothesis properties of the translator (pure, no I/O):

- any valid item list gives a Chat request a backend accepts: every message of a known role and
  shape (decoded strictly into the Chat types), every assistant `tool_calls` answered right after
  by one tool message per call id, and no tool message without its call;
- folding a stream of chunks gives the same Response as the non-streamed path: the translator with
  and without events settles the same response, the events' deltas add up to the final items, and a
  backend's whole (non-streamed) completion gives the same output as its stream.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_gateway.protocol.chat import AssistantMessage, ChatMessage, ToolMessage
from tests.support.translate import chat, translate

PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_decode_messages = msgspec.json.Decoder(list[ChatMessage]).decode

# -- item lists ------------------------------------------------------------------------------------


def _message() -> st.SearchStrategy[dict[str, Any]]:
    user_parts = st.lists(
        st.one_of(
            st.builds(lambda t: {"type": "input_text", "text": t}, TEXT),
            st.just({"type": "input_image", "image_url": "data:image/png;base64,AAAA"}),
        ),
        max_size=3,
    )
    assistant_parts = st.lists(
        st.one_of(
            st.builds(lambda t: {"type": "output_text", "text": t}, TEXT),
            st.builds(lambda t: {"type": "refusal", "refusal": t}, TEXT),
        ),
        max_size=3,
    )
    return st.one_of(
        st.builds(
            lambda r, c: {"role": r, "content": c}, st.sampled_from(["user", "system", "developer"]), TEXT
        ),
        st.builds(lambda c: {"type": "message", "role": "user", "content": c}, user_parts),
        st.builds(lambda c: {"role": "assistant", "content": c}, TEXT | assistant_parts),
    )


@st.composite
def _calls(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-3 calls (function or custom), then one output per call, in any order."""
    n = draw(st.integers(1, 3))
    custom = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ids = [f"call_{draw(NAME)}_{i}_{draw(st.integers(0, 10**6))}" for i in range(n)]
    calls = [
        {"type": "custom_tool_call", "call_id": c, "name": draw(NAME), "input": draw(TEXT)}
        if k
        else {"type": "function_call", "call_id": c, "name": draw(NAME), "arguments": draw(TEXT)}
        for c, k in zip(ids, custom, strict=True)
    ]
    order = draw(st.permutations(list(range(n))))
    outputs = [
        {
            "type": "custom_tool_call_output" if custom[i] else "function_call_output",
            "call_id": ids[i],
            "output": draw(
                TEXT | st.lists(st.builds(lambda t: {"type": "input_text", "text": t}, TEXT), max_size=2)
            ),
        }
        for i in order
    ]
    return calls + outputs


_REASONING = st.builds(
    lambda t: {"type": "reasoning", "summary": [{"type": "summary_text", "text": t}]}, TEXT
)


def _flatten(blocks: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The blocks' items in order; call ids made unique per block (a valid list has no duplicates)."""
    return [
        {**item, "call_id": f"{item['call_id']}_{b}"} if "call_id" in item else item
        for b, block in enumerate(blocks)
        for item in block
    ]


ITEM_LISTS = st.lists(
    st.one_of(_message().map(lambda m: [m]), _calls(), _REASONING.map(lambda r: [r])), min_size=1, max_size=6
).map(_flatten)


@PROPS
@given(items=ITEM_LISTS, instructions=st.none() | TEXT)
def test_any_valid_item_list_gives_a_chat_request_a_backend_accepts(
    items: list[dict[str, Any]], instructions: str | None
) -> None:
    body = chat({"model": "m", "input": items, "instructions": instructions})
    messages = _decode_messages(msgspec.json.encode(body["messages"]))  # strict: roles and shapes
    pending: list[str] = []
    answered: set[str] = set()
    for m in messages:
        if pending:  # an assistant's calls must be answered, each, before anything else
            assert isinstance(m, ToolMessage) and m.tool_call_id in pending, (m, pending)
            pending.remove(m.tool_call_id)
            answered.add(m.tool_call_id)
            continue
        assert not isinstance(m, ToolMessage), f"a tool message without its call: {m}"
        if isinstance(m, AssistantMessage):
            assert m.content is not None or m.tool_calls, "an assistant message with neither"
            ids = [c.id for c in m.tool_calls or ()]
            assert len(set(ids)) == len(ids) and not answered & set(ids)
            pending = ids
    assert not pending, f"calls never answered: {pending}"
    expected = {it["call_id"] for it in items if it.get("type") in ("function_call", "custom_tool_call")}
    assert answered == expected


# -- folding a stream ------------------------------------------------------------------------------

TOOLS = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in ("f", "g")]


@st.composite
def _completion(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "reasoning": draw(st.lists(TEXT.filter(bool), max_size=3)),
        "content": draw(st.lists(TEXT.filter(bool), max_size=4)),
        "calls": [
            {
                "id": f"call_{i}",
                "name": draw(st.sampled_from(["f", "g"])),
                "args": draw(st.lists(TEXT, max_size=3)),
            }
            for i in range(draw(st.integers(0, 2)))
        ],
        "finish": draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter", None])),
        "usage": draw(
            st.none()
            | st.builds(
                lambda p, c: {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
                st.integers(0, 10**6),
                st.integers(0, 10**6),
            )
        ),
    }


def _choice(delta: dict[str, Any], finish: str | None = None, key: str = "delta") -> dict[str, Any]:
    return {"choices": [{"index": 0, key: delta, "finish_reason": finish}]}


def _streamed(c: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = [_choice({"role": "assistant", "content": ""})]
    chunks += [_choice({"reasoning_content": piece}) for piece in c["reasoning"]]
    chunks += [_choice({"content": piece}) for piece in c["content"]]
    for i, call in enumerate(c["calls"]):
        head = {"index": i, "id": call["id"], "type": "function"}
        chunks.append(
            _choice({"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]})
        )
        chunks += [
            _choice({"tool_calls": [{"index": i, "function": {"arguments": a}}]}) for a in call["args"]
        ]
    chunks.append(_choice({}, c["finish"]))
    if c["usage"] is not None:
        chunks.append({"choices": [], "usage": c["usage"]})
    return chunks


def _whole(c: dict[str, Any]) -> list[dict[str, Any]]:
    """The same completion as one non-streamed answer (`message` instead of deltas)."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(c["content"]) or None}
    if c["reasoning"]:
        message["reasoning_content"] = "".join(c["reasoning"])
    if c["calls"]:
        message["tool_calls"] = [
            {
                "id": k["id"],
                "type": "function",
                "function": {"name": k["name"], "arguments": "".join(k["args"])},
            }
            for k in c["calls"]
        ]
    chunk = _choice(message, c["finish"], key="message")
    if c["usage"] is not None:
        chunk["usage"] = c["usage"]
    return [chunk]


@PROPS
@given(completion=_completion())
def test_folding_a_stream_gives_the_non_streamed_response(completion: dict[str, Any]) -> None:
    chunks = _streamed(completion)
    events, streamed = translate(chunks, TOOLS, events=True)
    _, folded = translate(chunks, TOOLS, events=False)
    _, whole = translate(_whole(completion), TOOLS, events=False)
    assert streamed == folded
    assert whole["output"] == folded["output"] and whole["status"] == folded["status"]
    assert whole["usage"] == folded["usage"] and whole["incomplete_details"] == folded["incomplete_details"]
    # the events add up to the settled response
    assert events[-1]["response"] == streamed
    text: dict[str, str] = {}
    for e in events:
        if e["type"] in ("response.output_text.delta", "response.function_call_arguments.delta"):
            text[e["item_id"]] = text.get(e["item_id"], "") + e["delta"]
    for item in streamed["output"]:
        if item["type"] == "message" and item["content"] and item["content"][0]["type"] == "output_text":
            assert text.get(item["id"], "") == item["content"][0]["text"]
        elif item["type"] == "function_call":
            assert text.get(item["id"], "") == item["arguments"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == streamed["output"]
