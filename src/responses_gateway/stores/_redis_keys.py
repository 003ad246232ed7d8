"""Redis key schema: `<prefix>response:{<thread tag>}:<response id>`, one HASH per response.

The hash tag keeps a whole conversation thread in one cluster slot, so one Lua script can read or
extend the whole chain on one node. Fields: `d` the record's meta blob ("" = tombstone), `h` its
history blob (input and output items: all a chain read needs), `p` parent id, `o` owner
(stores/base.py encode_parts).
"""

from __future__ import annotations

from responses_gateway import ids

FIELD_DATA = "d"
FIELD_HISTORY = "h"
FIELD_PARENT = "p"
FIELD_OWNER = "o"
# Ids not minted by this gateway (no thread tag inside) all share this tag: their chains still live
# in one slot (so the chain scripts work on a cluster), at the price of that slot being shared.
FOREIGN_TAG = "_"


def tag_of(response_id: str) -> str:
    """The hash tag of a response: its thread tag, or FOREIGN_TAG for ids that carry none."""
    return ids.thread_tag(response_id) or FOREIGN_TAG


class KeySchema:
    """Builds keys for one key prefix (e.g. `sr:`); _redis_scripts.KEY_OF mirrors `key` in Lua."""

    def __init__(self, key_prefix: str) -> None:
        self.prefix = key_prefix
        self.response_prefix = f"{key_prefix}response:"

    def key(self, response_id: str) -> str:
        return f"{self.response_prefix}{{{tag_of(response_id)}}}:{response_id}"

    def pattern(self) -> str:
        """A KEYS/SCAN pattern matching every response key of this prefix."""
        return f"{self.response_prefix}*"
