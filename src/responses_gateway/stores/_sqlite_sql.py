"""The SQLite store's schema and statements: turns in per-branch segments, so a history read walks
segments (one per branch point on the path), never one row per ancestor.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores._sqlite_background import SCHEMA as BACKGROUND_SCHEMA
from responses_gateway.stores._sqlite_conv import SCHEMA as CONVERSATION_SCHEMA
from responses_gateway.stores.base import ChainIncomplete, StoredResponse

SCHEMA_VERSION = 3  # 1 and 2 were development versions (one row per turn, a parent pointer each)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    parent INTEGER,                -- the segment this one branches from; NULL for a root
    parent_len INTEGER NOT NULL,   -- how many of the parent's turns precede this segment's
    missing TEXT,                  -- the parent response id, when it was already gone
    owner TEXT NOT NULL,
    size INTEGER NOT NULL,         -- turns appended so far: the tip is size - 1
    expires_at REAL NOT NULL       -- every turn of the segment lives this long
);
CREATE INDEX IF NOT EXISTS segments_expires_at ON segments (expires_at);
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    segment INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    parent TEXT,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    chat BLOB NOT NULL,            -- before the larger blobs: a history read stops here
    response BLOB NOT NULL,
    input_items BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS responses_turn ON responses (segment, idx);
"""

# The path from the asked turn's segment up to the root, one step per segment; then the turns of
# each segment up to where the path leaves it. A missing turn or segment leaves a gap in the parent
# links the caller checks. The depth bound only stops a corrupted (cyclic) path.
_HISTORY = """
WITH RECURSIVE path (segment, len, depth) AS (
    SELECT segment, idx + 1, 0 FROM responses WHERE id = :id
    UNION ALL
    SELECT s.parent, s.parent_len, p.depth + 1 FROM path AS p JOIN segments AS s ON s.id = p.segment
    WHERE s.parent IS NOT NULL AND p.depth < :max_depth
)
SELECT s.owner, s.expires_at, s.missing, r.id, r.parent, r.deleted, r.chat
FROM path AS p
LEFT JOIN segments AS s ON s.id = p.segment
LEFT JOIN responses AS r ON r.segment = p.segment AND r.idx < p.len
ORDER BY p.depth DESC, r.idx
"""
_MAX_DEPTH = 10_000

_GET = """
SELECT r.parent, r.created_at, r.response, r.input_items, r.chat
FROM responses AS r JOIN segments AS s ON s.id = r.segment
WHERE r.id = ? AND r.owner = ? AND r.deleted = 0 AND s.expires_at >= ?
"""

_TURN = """
SELECT r.segment, r.idx, s.size, s.owner, s.expires_at
FROM responses AS r JOIN segments AS s ON s.id = r.segment WHERE r.id = ?
"""

_REPLACE = """
UPDATE responses SET deleted = 0, chat = ?, response = ?, input_items = ?, created_at = ? WHERE id = ?
"""

_INSERT = """
INSERT INTO responses (id, segment, idx, parent, owner, created_at, chat, response, input_items)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# Every live ancestor segment must live at least as long as the new turn (`:expires_at`). Ancestors
# outlive descendants (this statement keeps that true), so the walk stops at the first one that
# already lives long enough, and those it extends get `:extended` (a little more than needed, never
# more than the segment where the walk stopped): a busy branchy conversation rewrites its ancestors
# once per slack period, not on every turn.
_EXTEND_ANCESTORS = """
WITH RECURSIVE ancestors (id, parent) AS (
    SELECT id, parent FROM segments
    WHERE id = (SELECT parent FROM segments WHERE id = :segment)
        AND expires_at >= :now AND expires_at < :expires_at
    UNION
    SELECT s.id, s.parent FROM segments AS s JOIN ancestors AS a ON s.id = a.parent
    WHERE s.expires_at >= :now AND s.expires_at < :expires_at
)
UPDATE segments SET expires_at = MIN(:extended, COALESCE((
    SELECT MIN(s.expires_at) FROM segments AS s
    WHERE s.id IN (SELECT parent FROM ancestors) AND s.id NOT IN (SELECT id FROM ancestors)
        AND s.expires_at >= :expires_at
), :extended))
WHERE id IN (SELECT id FROM ancestors)
"""

_DELETE = """
UPDATE responses SET deleted = 1, chat = x'', response = x'', input_items = x''
WHERE id = ? AND owner = ? AND deleted = 0
    AND segment IN (SELECT id FROM segments WHERE expires_at >= ?)
"""

_PURGE_TURNS = """
DELETE FROM responses WHERE rowid IN (
    SELECT r.rowid FROM segments AS s JOIN responses AS r ON r.segment = s.id
    WHERE s.expires_at < ? LIMIT ?
)
"""
_PURGE_SEGMENTS = """
DELETE FROM segments WHERE id IN (SELECT id FROM segments WHERE expires_at < ? LIMIT ?)
"""


def connect(path: str, *, reader: bool = False) -> sqlite3.Connection:
    """The writer's connection (creates the file and schema) or a read-only one on the same file."""
    if path != ":memory:" and not reader:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: the writer opens its transactions itself (BEGIN IMMEDIATE per batch).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if reader:
            conn.execute("PRAGMA query_only = 1")
            return conn
        _set_wal(conn)
        # FULL: a put is on disk before its reply, even across power loss; group commit pays one
        # fsync per batch of puts, not per put.
        conn.execute("PRAGMA synchronous = FULL")
        _create_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection, patience: float = 5.0) -> None:
    """WAL mode (kept in the file). Switching needs the file to itself and SQLite does not wait for
    that (no busy handler), so processes opening a new file at once retry for up to `patience` s."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _create_schema(conn: sqlite3.Connection, path: str) -> None:
    """Check the file's schema version and create the schema, in one write transaction: processes
    opening a new file at once (`serve --workers N`) take turns, and none sees half a schema."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _check_version(conn, path)
        # Tables added later (conversations, background) are created IF NOT EXISTS: an older file
        # of the same schema version just gains them.
        for schema in (_SCHEMA, CONVERSATION_SCHEMA, BACKGROUND_SCHEMA):
            statement = ""
            for line in schema.splitlines(keepends=True):
                statement += line
                if sqlite3.complete_statement(statement):  # SQLite's tokenizer: a ";" in a comment is not one
                    conn.execute(statement)
                    statement = ""
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_version(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version != SCHEMA_VERSION and (version != 0 or tables):
        raise StoreUnavailable(
            f"sqlite store: {path} was written by an earlier development version of the gateway"
            f" (schema {version}, this version needs {SCHEMA_VERSION}) and cannot be read; move it"
            " away or delete it to start with an empty store"
        )


# Below: jobs, each run with the connection as first argument (the writer's or the reader's).


def put(conn: sqlite3.Connection, record: StoredResponse, now: float, ttl: float, slack: float) -> None:
    expires_at = now + ttl
    old = conn.execute(_TURN, (record.id,)).fetchone()
    if old is not None and old[4] >= now:  # a retried put: same place in the chain, content replaced
        segment = old[0]
        conn.execute(
            _REPLACE, (record.chat, record.response, record.input_items, record.created_at, record.id)
        )
    else:
        if old is not None:  # expired, not purged yet: written anew
            conn.execute("DELETE FROM responses WHERE id = ?", (record.id,))
        segment, idx = _place(conn, record, now, expires_at)
        conn.execute(
            _INSERT,
            (
                record.id,
                segment,
                idx,
                record.previous_response_id,
                record.owner,
                record.created_at,
                record.chat,
                record.response,
                record.input_items,
            ),
        )
    conn.execute("UPDATE segments SET expires_at = MAX(expires_at, ?) WHERE id = ?", (expires_at, segment))
    conn.execute(
        _EXTEND_ANCESTORS,
        {"segment": segment, "now": now, "expires_at": expires_at, "extended": expires_at + slack},
    )


def _place(
    conn: sqlite3.Connection, record: StoredResponse, now: float, expires_at: float
) -> tuple[int, int]:
    """The (segment, index) of a new turn: the tip of its parent's segment when it is the parent's
    first child of the same owner, else index 0 of a new segment."""
    parent_id = record.previous_response_id
    parent = conn.execute(_TURN, (parent_id,)).fetchone() if parent_id is not None else None
    if parent is not None and parent[4] < now:
        parent = None  # expired: as good as gone
    row: tuple[int | None, int, str | None]
    if parent is not None:
        segment, idx, size, owner, _ = parent
        if idx == size - 1 and owner == record.owner:
            conn.execute("UPDATE segments SET size = size + 1 WHERE id = ?", (segment,))
            return segment, size
        row = (segment, idx + 1, None)
    else:
        row = (None, 0, parent_id)
    cur = conn.execute(
        "INSERT INTO segments (parent, parent_len, missing, owner, size, expires_at)"
        " VALUES (?, ?, ?, ?, 1, ?)",
        (*row, record.owner, expires_at),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid, 0


def get(conn: sqlite3.Connection, response_id: str, owner: str, now: float) -> StoredResponse | None:
    found = conn.execute(_GET, (response_id, owner, now)).fetchone()
    if found is None:
        return None
    parent, created_at, response, input_items, chat = found
    return StoredResponse(
        id=response_id,
        previous_response_id=parent,
        response=response,
        input_items=input_items,
        chat=chat,
        owner=owner,
        created_at=created_at,
    )


def history(conn: sqlite3.Connection, response_id: str, owner: str, now: float) -> list[bytes] | None:
    rows: list[tuple[Any, ...]] = conn.execute(
        _HISTORY, {"id": response_id, "max_depth": _MAX_DEPTH}
    ).fetchall()
    if not rows:
        return None
    head_owner, head_expires, _, head_id, _, head_deleted, _ = rows[-1]
    if head_id != response_id or head_owner != owner or head_expires < now or head_deleted:
        return None
    chats: list[bytes] = []
    previous: str | None = None
    first = True
    for seg_owner, expires_at, missing, rid, parent, deleted, chat in rows:
        if rid is None:
            continue  # a segment whose turns are all gone: the next turn's parent link shows it
        if first:
            if missing is not None:
                raise ChainIncomplete(response_id, missing)
            first = False
        if parent != previous:  # each turn is the child of the one before it on the path
            raise ChainIncomplete(response_id, parent)
        if seg_owner is None or expires_at < now:
            raise ChainIncomplete(response_id, rid)
        if seg_owner != owner:
            return None  # never hand out another owner's turns, even as history
        previous = rid
        if not deleted:
            chats.append(chat)
    return chats


def delete(conn: sqlite3.Connection, response_id: str, owner: str, now: float) -> bool:
    return conn.execute(_DELETE, (response_id, owner, now)).rowcount == 1


def purge(conn: sqlite3.Connection, now: float, batch: int) -> tuple[int, int]:
    """Delete up to `batch` turns of expired segments, then (once none is left) up to `batch` expired
    segments: (turns, segments) deleted."""
    turns: int = conn.execute(_PURGE_TURNS, (now, batch)).rowcount
    segments: int = conn.execute(_PURGE_SEGMENTS, (now, batch)).rowcount if turns < batch else 0
    return turns, segments
