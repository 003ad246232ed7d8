"""The inspector's tree (inspector.py) from hand-made threads: order, branches, tombstones, orphans,
depth, and text that cannot drive a terminal."""

from __future__ import annotations

import orjson

from responses_gateway.inspector import _tree, items, render_chain
from responses_gateway.stores.inspect import Thread, Turn


def _turn(rid: str, parent: str | None, at: int, text: str = "", deleted: bool = False) -> Turn:
    response = orjson.dumps(
        {
            "status": "completed",
            "model": "m",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "re " + text}],
                }
            ],
        }
    )
    inputs = orjson.dumps([{"role": "user", "content": text}])
    return Turn(rid, parent, at, deleted, b"" if deleted else response, b"" if deleted else inputs)


def _shape(tree: dict[str, object]) -> list[tuple[str, int, bool]]:
    turns = tree["turns"]
    assert isinstance(turns, list)
    return [(t["id"], t["level"], t["branch"]) for t in turns]


def test_branches_nest_and_the_path_is_the_spine() -> None:
    # r -> a -> b -> c (asked); r -> x -> y ; x -> z ; a -> w
    turns = [
        _turn("r", None, 1),
        _turn("a", "r", 2),
        _turn("b", "a", 3),
        _turn("c", "b", 4),
        _turn("x", "r", 5),
        _turn("y", "x", 6),
        _turn("z", "x", 7),
        _turn("w", "a", 8),
    ]
    tree = _tree(Thread(list(reversed(turns)), True, "test"), "c")
    assert tree["path"] == ["r", "a", "b", "c"]
    assert _shape(tree) == [
        ("r", 0, False),
        ("x", 1, True),
        ("z", 2, True),
        ("y", 1, False),
        ("a", 0, False),
        ("w", 1, True),
        ("b", 0, False),
        ("c", 0, False),
    ]


def test_below_the_asked_turn_the_oldest_child_continues() -> None:
    turns = [_turn("r", None, 1), _turn("late", "r", 9), _turn("early", "r", 3)]
    tree = _tree(Thread(turns, True, "test"), "r")
    assert _shape(tree) == [("r", 0, False), ("late", 1, True), ("early", 0, False)]


def test_tombstones_keep_their_place_and_orphans_start_their_own_root() -> None:
    turns = [_turn("r", None, 1, deleted=True), _turn("a", "r", 2, "hi"), _turn("o", "gone", 3, "lost")]
    tree = _tree(Thread(turns, False, "test"), "a")
    shaped = tree["turns"]
    assert isinstance(shaped, list)
    assert [t["id"] for t in shaped] == ["r", "a", "o"]
    assert shaped[0]["deleted"] is True and shaped[0]["input"] == [] and shaped[0]["status"] is None
    assert shaped[2]["parent_missing"] is True and shaped[2]["level"] == 0
    assert tree["complete"] is False
    text = render_chain(tree)
    assert "parent gone: gone" in text and "may be missing" in text


def test_a_deep_linear_chain_needs_no_recursion() -> None:
    turns = [_turn(f"t{i}", f"t{i - 1}" if i else None, i) for i in range(5000)]
    tree = _tree(Thread(turns, True, "test"), "t4999")
    assert [t[1] for t in _shape(tree)] == [0] * 5000
    assert orjson.dumps(tree)  # flat: no nesting limit


def test_items_are_summarised_and_text_cannot_drive_a_terminal() -> None:
    raw = orjson.dumps(
        [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a\x1b[31mred"},
                    {"type": "input_image", "image_url": "x"},
                ],
            },
            {"type": "function_call", "name": "f", "call_id": "c1", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        ]
    )
    summary = items(raw)
    assert summary[0] == {"type": "message", "role": "user", "text": "a\x1b[31mred\n[input_image]"}
    assert summary[1]["name"] == "f" and summary[1]["text"] == "{}"
    assert summary[2]["text"] == "42"
    assert summary[3]["type"] == "web_search_call" and "ws_1" in str(summary[3]["text"])
    turn = Turn("r", None, 1, False, orjson.dumps({"status": "completed", "output": []}), raw)
    text = render_chain(_tree(Thread([turn], True, "test"), "r"))
    assert "\x1b" not in text and "a\\x1b[31mred" in text
    full = render_chain(_tree(Thread([turn], True, "test"), "r"), full=True)
    assert "\x1b" not in full and "\n" in full
