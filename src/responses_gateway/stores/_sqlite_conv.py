"""Conversations in the SQLite store: a row per conversation, a row per item keyed by (conversation,
position); every write is a job of the store's writer thread (so an append is one transaction), and a
page of items is one indexed range read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from responses_gateway.stores.conversations import (
    ConversationItem,
    ItemsPage,
    Order,
    StoredConversation,
)

if TYPE_CHECKING:
    from responses_gateway.stores.sqlite import SQLiteStore

__all__ = ["SCHEMA", "SQLiteConversations", "purge"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    metadata BLOB NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0,  -- the position the next item appended takes
    expires_at REAL                       -- NULL: never (response_api.conversation_ttl_seconds unset)
);
CREATE INDEX IF NOT EXISTS conversations_expires_at ON conversations (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS conversation_items (
    conversation TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    item BLOB NOT NULL,
    PRIMARY KEY (conversation, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS conversation_items_id ON conversation_items (conversation, id);
"""

_LIVE = "id = ? AND owner = ? AND (expires_at IS NULL OR expires_at >= ?)"


def _expiry(now: float, ttl: int | None) -> float | None:
    return None if ttl is None else now + ttl


def _live(conn: sqlite3.Connection, cid: str, owner: str, now: float) -> tuple[int, bytes] | None:
    row = conn.execute(f"SELECT created_at, metadata FROM conversations WHERE {_LIVE}", (cid, owner, now))
    found: tuple[int, bytes] | None = row.fetchone()
    return found


def _insert_items(conn: sqlite3.Connection, cid: str, items: Sequence[ConversationItem]) -> None:
    row = conn.execute(
        "UPDATE conversations SET next_seq = next_seq + ? WHERE id = ? RETURNING next_seq",
        (len(items), cid),
    ).fetchone()
    first = row[0] - len(items)
    conn.executemany(
        "INSERT INTO conversation_items (conversation, seq, id, item) VALUES (?, ?, ?, ?)",
        [(cid, first + i, item_id, item) for i, (item_id, item) in enumerate(items)],
    )


def _create(
    conn: sqlite3.Connection,
    conv: StoredConversation,
    items: Sequence[ConversationItem],
    now: float,
    ttl: int | None,
) -> None:
    conn.execute(
        "INSERT INTO conversations (id, owner, created_at, metadata, expires_at) VALUES (?, ?, ?, ?, ?)",
        (conv.id, conv.owner, conv.created_at, conv.metadata, _expiry(now, ttl)),
    )
    if items:
        _insert_items(conn, conv.id, items)


def _update(
    conn: sqlite3.Connection, cid: str, metadata: bytes, owner: str, now: float, ttl: int | None
) -> StoredConversation | None:
    found = _live(conn, cid, owner, now)
    if found is None:
        return None
    conn.execute(
        "UPDATE conversations SET metadata = ?, expires_at = ? WHERE id = ?",
        (metadata, _expiry(now, ttl), cid),
    )
    return StoredConversation(cid, owner, found[0], metadata)


def _delete(conn: sqlite3.Connection, cid: str, owner: str, now: float) -> bool:
    if _live(conn, cid, owner, now) is None:
        return False
    conn.execute("DELETE FROM conversation_items WHERE conversation = ?", (cid,))
    conn.execute("DELETE FROM conversations WHERE id = ?", (cid,))
    return True


def _append(
    conn: sqlite3.Connection,
    cid: str,
    items: Sequence[ConversationItem],
    owner: str,
    now: float,
    ttl: int | None,
) -> bool:
    if _live(conn, cid, owner, now) is None:
        return False
    if items:
        _insert_items(conn, cid, items)
    if ttl is not None:
        conn.execute("UPDATE conversations SET expires_at = ? WHERE id = ?", (now + ttl, cid))
    return True


def _list(
    conn: sqlite3.Connection,
    cid: str,
    owner: str,
    now: float,
    limit: int | None,
    order: Order,
    after: str | None,
) -> ItemsPage | None:
    if _live(conn, cid, owner, now) is None:
        return None
    asc = order == "asc"
    bound: int | None = None
    if after is not None:
        row = conn.execute(
            "SELECT seq FROM conversation_items WHERE conversation = ? AND id = ?", (cid, after)
        ).fetchone()
        if row is None:
            return ItemsPage(after_missing=True)
        bound = row[0]
    where = "conversation = ?"
    args: list[object] = [cid]
    if bound is not None:
        where += " AND seq > ?" if asc else " AND seq < ?"
        args.append(bound)
    sql = f"SELECT id, item FROM conversation_items WHERE {where} ORDER BY seq {'ASC' if asc else 'DESC'}"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit + 1)
    rows = conn.execute(sql, args).fetchall()
    has_more = limit is not None and len(rows) > limit
    return ItemsPage([(r[0], bytes(r[1])) for r in rows[:limit]], has_more)


def _get_item(conn: sqlite3.Connection, cid: str, item_id: str, owner: str, now: float) -> bytes | None:
    if _live(conn, cid, owner, now) is None:
        return None
    row = conn.execute(
        "SELECT item FROM conversation_items WHERE conversation = ? AND id = ?", (cid, item_id)
    ).fetchone()
    return None if row is None else bytes(row[0])


def _delete_item(
    conn: sqlite3.Connection, cid: str, item_id: str, owner: str, now: float, ttl: int | None
) -> bool:
    if _live(conn, cid, owner, now) is None:
        return False
    cur = conn.execute("DELETE FROM conversation_items WHERE conversation = ? AND id = ?", (cid, item_id))
    if cur.rowcount != 1:
        return False
    if ttl is not None:
        conn.execute("UPDATE conversations SET expires_at = ? WHERE id = ?", (now + ttl, cid))
    return True


def purge(conn: sqlite3.Connection, now: float, batch: int) -> int:
    """Delete up to `batch` expired conversations with their items: how many went."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM conversations WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?",
            (now, batch),
        )
    ]
    for cid in ids:
        conn.execute("DELETE FROM conversation_items WHERE conversation = ?", (cid,))
        conn.execute("DELETE FROM conversations WHERE id = ?", (cid,))
    return len(ids)


class SQLiteConversations:
    """The ConversationStore of a SQLiteStore (its writer, its reader, its clock)."""

    def __init__(self, store: SQLiteStore, ttl_seconds: int | None) -> None:
        self._store = store
        self._ttl = ttl_seconds

    def _now(self) -> float:
        return self._store.now()

    async def create(self, conversation: StoredConversation, items: Sequence[ConversationItem]) -> None:
        await self._store.write(_create, conversation, list(items), self._now(), self._ttl)

    async def get(self, conversation_id: str, *, owner: str) -> StoredConversation | None:
        found = await self._store.read(_live, conversation_id, owner, self._now())
        return None if found is None else StoredConversation(conversation_id, owner, found[0], found[1])

    async def update(self, conversation_id: str, metadata: bytes, *, owner: str) -> StoredConversation | None:
        return await self._store.write(_update, conversation_id, metadata, owner, self._now(), self._ttl)

    async def delete(self, conversation_id: str, *, owner: str) -> bool:
        return await self._store.write(_delete, conversation_id, owner, self._now())

    async def append(self, conversation_id: str, items: Sequence[ConversationItem], *, owner: str) -> bool:
        return await self._store.write(_append, conversation_id, list(items), owner, self._now(), self._ttl)

    async def list_items(
        self,
        conversation_id: str,
        *,
        owner: str,
        limit: int | None,
        order: Order = "asc",
        after: str | None = None,
    ) -> ItemsPage | None:
        return await self._store.read(_list, conversation_id, owner, self._now(), limit, order, after)

    async def get_item(self, conversation_id: str, item_id: str, *, owner: str) -> bytes | None:
        return await self._store.read(_get_item, conversation_id, item_id, owner, self._now())

    async def delete_item(self, conversation_id: str, item_id: str, *, owner: str) -> bool:
        return await self._store.write(_delete_item, conversation_id, item_id, owner, self._now(), self._ttl)
