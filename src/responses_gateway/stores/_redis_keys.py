"""Redis key schema: a HASH per response and a LIST per branch segment, all in the thread's hash slot.

`<prefix>response:{<tag>}:<response id>` and `<prefix>seg:{<tag>}:<id of the segment's first turn>`;
see docs/STORE-LAYOUT.md. _redis_scripts.KEY_OF is the Lua twin of `KeySchema.key` (a test checks it).
"""

from __future__ import annotations

import hashlib

from responses_gateway import ids

# Ids not minted by this gateway (no thread tag inside) all share this tag: their chains still live
# in one slot (so the chain scripts work on a cluster), at the price of that slot being shared.
FOREIGN_TAG = "_"
RESPONSE = "response"
SEGMENT = "seg"
RECENT = "recent"


def tag_of(response_id: str) -> str:
    """The hash tag of a response: its thread tag, or FOREIGN_TAG for ids that carry none."""
    return ids.thread_tag(response_id) or FOREIGN_TAG


class KeySchema:
    """Builds keys for one key prefix (e.g. `sr:`)."""

    def __init__(self, key_prefix: str) -> None:
        self.prefix = key_prefix
        self.response_prefix = f"{key_prefix}{RESPONSE}:"

    def key(self, response_id: str, kind: str = RESPONSE) -> str:
        """The key of a response (kind RESPONSE) or of the segment a response starts (SEGMENT)."""
        return f"{self.prefix}{kind}:{{{tag_of(response_id)}}}:{response_id}"

    def segment(self, segment_id: str) -> str:
        return self.key(segment_id, SEGMENT)

    def pattern(self) -> str:
        """A KEYS/SCAN pattern matching every response key of this prefix."""
        return f"{self.response_prefix}*"

    def recent(self, owner: str) -> str:
        """The ZSET of an owner's recent response ids (written only with `ui.enabled`; stores/recent.py),
        tagged by a digest of the owner so any tenant name makes a plain key."""
        digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
        return f"{self.prefix}{RECENT}:{{{digest}}}"
