"""ConversationsService: the Conversations API over the store's conversations. No HTTP here.

Ids are checked for their shape before any store access (an id that is not one of ours is the
unknown-id 404 at once). Items added get fresh ids of their own; messages are normalized as the
Responses API's input is (string content becomes one text part; status `completed`).
A write the store refuses as too large for one conversation (ConversationTooLarge) is a 400 naming the
setting that bounds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec
import orjson

from responses_gateway.errors import InvalidRequest, NotFound
from responses_gateway.ids import (
    is_conversation_id,
    is_item_id,
    new_conversation_id,
    new_conversation_item_id,
)
from responses_gateway.protocol.conversations import (
    Conversation,
    ConversationDeleted,
    ConversationItemList,
    CreateConversation,
)
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.items import InputText, Item, Message, OutputText
from responses_gateway.protocol.request import Metadata
from responses_gateway.stores.base import ResponseStore
from responses_gateway.stores.conversations import (
    ConversationItem,
    ConversationTooLarge,
    ItemsPage,
    Order,
    StoredConversation,
)
from responses_gateway.translate.items import item_prefix

__all__ = ["ConversationsService", "conversation_not_found"]

_encode = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(Item).decode


def conversation_not_found(conversation_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"Conversation with id '{shown(conversation_id)}' not found.", param=param)


def _item_not_found(item_id: str) -> NotFound:
    return NotFound(f"Item with id '{shown(item_id)}' not found.", param="item_id")


def _checked(conversation_id: str) -> str:
    if not is_conversation_id(conversation_id):
        raise conversation_not_found(conversation_id)
    return conversation_id


def fresh_item(item: Item) -> ConversationItem:
    """`item` as a new conversation item: a fresh id, a message's content as parts, then its JSON."""
    if isinstance(item, Message):
        if isinstance(item.content, str):
            text = item.content
            item.content = [OutputText(text, []) if item.role == "assistant" else InputText(text)]
        item.status = item.status or "completed"
    item.id = new_conversation_item_id(item_prefix(item))
    return item.id, _encode(item)


def too_large(exc: ConversationTooLarge, param: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"The conversation would hold {exc.size} bytes, over the {exc.limit} bytes one conversation "
        f"may hold ({exc.setting}); nothing was changed.",
        param=param,
        code="conversation_too_large",
    )


def _view(conv: StoredConversation) -> Conversation:
    return Conversation(id=conv.id, created_at=conv.created_at, metadata=msgspec.Raw(conv.metadata))


def _page(page: ItemsPage) -> ConversationItemList:
    data = [msgspec.Raw(item) for _, item in page.items]
    first = page.items[0][0] if page.items else None
    last = page.items[-1][0] if page.items else None
    return ConversationItemList(data=data, first_id=first, last_id=last, has_more=page.has_more)


class ConversationsService:
    def __init__(self, store: ResponseStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def create(self, req: CreateConversation, owner: str) -> Conversation:
        conv = StoredConversation(
            id=new_conversation_id(),
            owner=owner,
            created_at=int(self._clock()),
            metadata=orjson.dumps(req.metadata or {}),
        )
        try:
            await self._store.conversations.create(conv, [fresh_item(i) for i in req.items or []])
        except ConversationTooLarge as exc:
            raise too_large(exc, "items") from None
        return _view(conv)

    async def get(self, conversation_id: str, owner: str) -> Conversation:
        conv = await self._store.conversations.get(_checked(conversation_id), owner=owner)
        if conv is None:
            raise conversation_not_found(conversation_id)
        return _view(conv)

    async def update(self, conversation_id: str, metadata: Metadata, owner: str) -> Conversation:
        cid = _checked(conversation_id)
        try:
            conv = await self._store.conversations.update(cid, orjson.dumps(metadata), owner=owner)
        except ConversationTooLarge as exc:
            raise too_large(exc, "metadata") from None
        if conv is None:
            raise conversation_not_found(conversation_id)
        return _view(conv)

    async def delete(self, conversation_id: str, owner: str) -> ConversationDeleted:
        if not await self._store.conversations.delete(_checked(conversation_id), owner=owner):
            raise conversation_not_found(conversation_id)
        return ConversationDeleted(id=conversation_id)

    async def add_items(
        self, conversation_id: str, items: Sequence[Item], owner: str
    ) -> ConversationItemList:
        cid = _checked(conversation_id)
        added = [fresh_item(i) for i in items]
        try:
            appended = await self._store.conversations.append(cid, added, owner=owner)
        except ConversationTooLarge as exc:
            raise too_large(exc, "items") from None
        if not appended:
            raise conversation_not_found(conversation_id)
        return _page(ItemsPage(added, False))

    async def list_items(
        self, conversation_id: str, owner: str, *, limit: int, order: Order, after: str | None
    ) -> ConversationItemList:
        cid = _checked(conversation_id)
        if after is not None and not is_item_id(after):
            raise _after_not_found(after)
        page = await self._store.conversations.list_items(
            cid, owner=owner, limit=limit, order=order, after=after
        )
        if page is None:
            raise conversation_not_found(conversation_id)
        if page.after_missing:
            assert after is not None
            raise _after_not_found(after)
        return _page(page)

    async def get_item(self, conversation_id: str, item_id: str, owner: str) -> bytes:
        cid = _checked(conversation_id)
        item = (
            await self._store.conversations.get_item(cid, item_id, owner=owner)
            if is_item_id(item_id)
            else None
        )
        if item is None:
            await self.get(cid, owner)  # an unknown conversation is named as such
            raise _item_not_found(item_id)
        return item

    async def delete_item(self, conversation_id: str, item_id: str, owner: str) -> Conversation:
        cid = _checked(conversation_id)
        if not is_item_id(item_id) or not await self._store.conversations.delete_item(
            cid, item_id, owner=owner
        ):
            await self.get(cid, owner)
            raise _item_not_found(item_id)
        return await self.get(cid, owner)

    # -- for POST /v1/responses with `conversation` ------------------------------------------------

    async def history(self, conversation_id: str, owner: str) -> list[Item]:
        """Every item of the conversation, oldest first (what the backend is given before the input)."""
        page = None
        if is_conversation_id(conversation_id):
            page = await self._store.conversations.list_items(conversation_id, owner=owner, limit=None)
        if page is None:
            raise conversation_not_found(conversation_id, "conversation")
        return [_decode_item(item) for _, item in page.items]

    async def append(self, conversation_id: str, items: Sequence[ConversationItem], owner: str) -> bool:
        """Append a turn's items as one unit; False when the conversation is gone meanwhile.
        ConversationTooLarge (nothing appended) when the turn would take it over the store's bound."""
        return await self._store.conversations.append(conversation_id, items, owner=owner)


def _after_not_found(after: str) -> InvalidRequest:
    return InvalidRequest(f"Item with id '{shown(after)}' not found in the conversation.", param="after")
