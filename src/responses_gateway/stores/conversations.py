"""The conversation store contract: conversations and their items, on every backend (bytes only).

Semantics every backend shares (the contract suite in tests/stores/test_conversations.py checks them):
- A conversation has an id (`conv_…`, minted by the caller), an owner, a creation time and metadata
  (a JSON object, as bytes); its items are `(item id, item JSON)` pairs kept in the order appended.
  Callers mint item ids; an id is never appended twice to one conversation.
- Every read or write of an unknown, deleted, expired or another owner's conversation answers alike
  (None / False): callers cannot tell these apart, by design.
- `append` adds a batch of items as one unit: concurrent appends to one conversation never interleave
  or lose items (each batch is contiguous, in the order given).
- `list_items` is a page of at most `limit` items after the item `after` (exclusive), in `order`,
  with `has_more`; its cost is that of one page, not of the conversation's length (an index read).
  `limit=None` returns every item (the history a response with `conversation` is given).
- A conversation does not expire unless the store was opened with `conversation_ttl_seconds`: then
  it (and its items) lives that long after its last write.
- Failures of the backend itself raise StoreUnavailable (503); no driver exception escapes a store.
- A store that bounds what one conversation may hold (the memory store's byte bound) refuses a write
  that would take a conversation over it with ConversationTooLarge, changing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "ConversationItem",
    "ConversationStore",
    "ConversationTooLarge",
    "ItemsPage",
    "Order",
    "StoredConversation",
]

Order = Literal["asc", "desc"]
ConversationItem = tuple[str, bytes]  # (item id, item JSON)


class ConversationTooLarge(Exception):
    """The write would take one conversation to `size` bytes, over the store's bound `limit` (named by
    the config key `setting`): refused as a whole, nothing changed."""

    def __init__(self, conversation_id: str, size: int, limit: int, setting: str) -> None:
        super().__init__(f"conversation {conversation_id} would hold {size} bytes, over {setting} ({limit})")
        self.conversation_id = conversation_id
        self.size = size
        self.limit = limit
        self.setting = setting


@dataclass(frozen=True, slots=True)
class StoredConversation:
    id: str
    owner: str
    created_at: int
    metadata: bytes  # a JSON object


@dataclass(frozen=True, slots=True)
class ItemsPage:
    items: list[ConversationItem] = field(default_factory=list)
    has_more: bool = False
    after_missing: bool = False  # `after` named no item of the conversation (the page is empty)


class ConversationStore(Protocol):
    async def create(self, conversation: StoredConversation, items: Sequence[ConversationItem]) -> None: ...

    async def get(self, conversation_id: str, *, owner: str) -> StoredConversation | None: ...

    async def update(
        self, conversation_id: str, metadata: bytes, *, owner: str
    ) -> StoredConversation | None: ...

    async def delete(self, conversation_id: str, *, owner: str) -> bool: ...

    async def append(
        self, conversation_id: str, items: Sequence[ConversationItem], *, owner: str
    ) -> bool: ...

    async def list_items(
        self,
        conversation_id: str,
        *,
        owner: str,
        limit: int | None,
        order: Order = "asc",
        after: str | None = None,
    ) -> ItemsPage | None: ...

    async def get_item(self, conversation_id: str, item_id: str, *, owner: str) -> bytes | None: ...

    async def delete_item(self, conversation_id: str, item_id: str, *, owner: str) -> bool: ...
