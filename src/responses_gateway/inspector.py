"""The inspector behind `responses-gateway inspect` and `/ui`: a store's health, an owner's recent
responses, and a response's thread as a tree with each turn's items, as JSON-ready dicts and as text.

The tree is flattened for display: the path from the root to the asked response is the spine (level
0); a branch (any other child) hangs one level deeper right after the turn it branches from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from responses_gateway.stores.inspect import Health, StoreInspector, Thread, Turn

__all__ = ["chain", "health", "recent", "render_chain", "render_health", "render_recent"]

JSON = dict[str, object]
_PREVIEW_CHARS = 120


async def health(inspector: StoreInspector) -> Health:
    """The store's health and size, with how long it took to answer."""
    start = time.perf_counter()
    report = await inspector.health()
    report["answered_in_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return report


async def recent(inspector: StoreInspector, owner: str, limit: int) -> list[JSON]:
    """The owner's newest live responses: id, time, status, model and the start of its input."""
    return [_summary(turn) for turn in await inspector.recent(owner, limit)]


async def chain(inspector: StoreInspector, response_id: str, owner: str) -> JSON | None:
    """The thread of `response_id` as a flat tree (see the module doc), or None when the owner has
    no such response."""
    thread = await inspector.thread(response_id, owner)
    if thread is None:
        return None
    return _tree(thread, response_id)


@dataclass(slots=True)
class _Node:
    turn: Turn
    children: list[_Node] = field(default_factory=list)


def _tree(thread: Thread, asked: str) -> JSON:
    nodes = {t.id: _Node(t) for t in thread.turns}
    roots: list[_Node] = []
    for node in nodes.values():
        parent = nodes.get(node.turn.parent) if node.turn.parent else None
        (parent.children if parent is not None else roots).append(node)

    def order(
        n: _Node,
    ) -> tuple[int, int, str]:  # siblings: oldest first (the second, then the store's order)
        return (n.turn.created_at, n.turn.seq, n.turn.id)

    for node in nodes.values():
        node.children.sort(key=order)
    path: list[str] = []
    cursor = nodes.get(asked)
    while cursor is not None and cursor.turn.id not in path:
        path.append(cursor.turn.id)
        cursor = nodes.get(cursor.turn.parent) if cursor.turn.parent else None
    path.reverse()
    on_path = set(path)
    roots.sort(key=lambda n: (n.turn.id not in on_path, *order(n)))
    flat: list[JSON] = []
    stack: list[tuple[_Node, int, bool]] = [(root, 0, False) for root in reversed(roots)]
    while stack:  # iterative: a linear chain may be thousands deep
        node, level, branch = stack.pop()
        kids = node.children
        main = next((k for k in kids if k.turn.id in on_path), kids[0] if kids else None)
        flat.append(_node(node, level, branch, on_path, asked, nodes))
        if main is not None:
            stack.append((main, level, False))
        stack.extend((k, level + 1, True) for k in reversed(kids) if k is not main)
    return {
        "id": asked,
        "path": path,
        "complete": thread.complete,
        "found_by": thread.method,
        "turns": flat,
    }


def _node(
    node: _Node, level: int, branch: bool, on_path: set[str], asked: str, nodes: dict[str, _Node]
) -> JSON:
    turn = node.turn
    response = _loads(turn.response)
    body = response if isinstance(response, dict) else {}
    return {
        "id": turn.id,
        "parent": turn.parent,
        "parent_missing": turn.parent is not None and turn.parent not in nodes,
        "level": level,
        "branch": branch,
        "on_path": turn.id in on_path,
        "selected": turn.id == asked,
        "children": [c.turn.id for c in node.children],
        "created_at": turn.created_at,
        "deleted": turn.deleted,
        "status": body.get("status"),
        "model": body.get("model"),
        "input": items(turn.input_items),
        "output": items_of(body.get("output")),
    }


def _summary(turn: Turn) -> JSON:
    response = _loads(turn.response)
    body = response if isinstance(response, dict) else {}
    texts = [str(i.get("text", "")) for i in items(turn.input_items) if i.get("text")]
    preview = " ".join(texts)
    return {
        "id": turn.id,
        "previous_response_id": turn.parent,
        "created_at": turn.created_at,
        "status": body.get("status"),
        "model": body.get("model"),
        "preview": preview[:_PREVIEW_CHARS] + ("…" if len(preview) > _PREVIEW_CHARS else ""),
    }


def _loads(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def items(raw: bytes) -> list[JSON]:
    """A turn's stored items (a JSON array) as short summaries: type, role or name, text."""
    return items_of(_loads(raw))


def items_of(value: object) -> list[JSON]:
    if not isinstance(value, list):
        return []
    return [_item(item) for item in value if isinstance(item, dict)]


def _item(item: dict[str, object]) -> JSON:
    kind = str(item.get("type") or ("message" if "role" in item else "unknown"))
    summary: JSON = {"type": kind}
    for name in ("id", "role", "name", "call_id"):
        if isinstance(item.get(name), str):
            summary[name] = item[name]
    if kind == "message":
        summary["text"] = _content_text(item.get("content"))
    elif kind == "function_call":
        summary["text"] = str(item.get("arguments", ""))
    elif kind == "function_call_output":
        output = item.get("output")
        summary["text"] = output if isinstance(output, str) else _content_text(output)
    elif kind == "reasoning":
        summary["text"] = _content_text(item.get("summary")) or _content_text(item.get("content"))
    else:
        summary["text"] = orjson.dumps(item).decode()
    return summary


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if isinstance(part, dict):
            text = part.get("text", part.get("refusal"))
            parts.append(str(text) if text is not None else f"[{part.get('type', 'part')}]")
    return "\n".join(parts)


# --- text for the terminal ---------------------------------------------------------------------


def render_health(report: Health) -> str:
    lines = []
    nested = {k: v for k, v in report.items() if isinstance(v, list)}
    for name, value in report.items():
        if name not in nested:
            lines.append(f"{name}: {value}")
    for name, entries in nested.items():
        lines.append(f"{name}:")
        for entry in entries:
            if isinstance(entry, dict):
                lines.append("  - " + ", ".join(f"{k}={v}" for k, v in entry.items()))
    return "\n".join(lines) + "\n"


def render_recent(entries: list[JSON]) -> str:
    lines = [f"recent responses ({len(entries)}):"]
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(str(e["created_at"]))))
        lines.append(f"  {e['id']}  {when}  {e['status']}  {e['model']}  {_one_line(str(e['preview']))}")
    return "\n".join(lines) + "\n"


def render_chain(tree: JSON, full: bool = False) -> str:
    turns = tree["turns"]
    assert isinstance(turns, list)
    lines = [f"thread of {tree['id']}: {len(turns)} turns ({tree['found_by']})"]
    if not tree["complete"]:
        lines.append("  (the search stopped at a bound: turns may be missing)")
    for turn in turns:
        indent = "    " * int(str(turn["level"]))
        mark = "*" if turn["selected"] else ("|" if turn["on_path"] else " ")
        head = f"{indent}{'└─ ' if turn['branch'] else ''}{mark} {turn['id']}"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(str(turn["created_at"]))))
        state = "deleted" if turn["deleted"] else f"{turn['status']} {turn['model']}"
        extra = "  (parent gone: " + str(turn["parent"]) + ")" if turn["parent_missing"] else ""
        if turn["branch"]:
            extra += f"  (branch from {turn['parent']})"
        lines.append(f"{head}  {when}  {state}{extra}")
        for label in ("input", "output"):
            entries = turn[label]
            assert isinstance(entries, list)
            for item in entries:
                who = item.get("role") or item.get("name") or ""
                text = str(item.get("text", ""))
                text = _printable(text) if full else _one_line(text)
                lines.append(f"{indent}      {label[:3]} {item['type']}{' ' + who if who else ''}: {text}")
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    """`text` with control characters (a terminal's escape sequences) shown as escapes, not sent."""
    return "".join(c if c == "\n" or c.isprintable() else repr(c)[1:-1] for c in text)


def _one_line(text: str, limit: int = _PREVIEW_CHARS) -> str:
    flat = _printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
