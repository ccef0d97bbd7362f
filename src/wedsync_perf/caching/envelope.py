"""The stored form of a cache entry.

    line 1: the entry's tags and their versions when it was written: "tagkey ver …"
    line 2: "v2 data_class expires_ms delta_ms flags"  (format version, the data class
            it was written for, absolute expiry, loader time, bit 0 = sealed)
    rest:   the body: a 32-byte MAC then the serialised value, or (sealed) the AES-GCM
            ciphertext of the serialised value

Both lines together are the header. The body authenticates the entry's key name and
its whole header (`bound`): an unsealed body by HMAC-SHA-256, a sealed one as AES-GCM
associated data. So an entry forged, moved to another key, replayed with a rewritten
header (newer tag versions, a later expiry) or cut short fails to verify.

The first line is plain text on purpose: the Redis read script checks each tag's
current version against it and answers "miss" without the client ever seeing a stale
value. `delta_ms` (how long the loader took) drives probabilistic early recomputation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wedsync_perf.errors import CorruptData

__all__ = ["FORMAT", "SEALED", "Envelope", "bound", "header", "parse"]

FORMAT = b"v2"
SEALED = 1
_TAG_LINE = re.compile(rb"(?:[!-~]+ [0-9]{1,19}(?: |$))*")
_META_LINE = re.compile(rb"v2 ([a-z][a-z0-9_]{0,63}) ([0-9]{1,16}) ([0-9]{1,12}) ([0-9]{1,3})")


@dataclass(frozen=True, slots=True)
class Envelope:
    tags: tuple[tuple[str, int], ...]
    data_class: str
    expires_ms: int
    delta_ms: int
    flags: int
    header: bytes  # both lines, newlines included: what the body authenticates
    body: bytes


def header(
    tags: Sequence[tuple[str, int]], data_class: str, expires_ms: int, delta_ms: int, flags: int
) -> bytes:
    head = " ".join(f"{key} {version}" for key, version in tags)
    return f"{head}\n{FORMAT.decode()} {data_class} {expires_ms} {delta_ms} {flags}\n".encode()


def bound(entry: str, head: bytes) -> bytes:
    """What a body authenticates besides itself: the key name (length-prefixed, so no
    split between name and header is ambiguous) and the header."""
    name = entry.encode()
    return len(name).to_bytes(4, "big") + name + head


def parse(blob: bytes) -> Envelope:
    """Raises `CorruptData` on anything that is not a well-formed v2 header; the body
    is not checked here (the cache verifies it against `bound`)."""
    first = blob.find(b"\n")
    second = blob.find(b"\n", first + 1) if first >= 0 else -1
    if second < 0:
        raise CorruptData("cache entry has no header")
    tag_line, meta_line = blob[:first], blob[first + 1 : second]
    meta = _META_LINE.fullmatch(meta_line)
    if meta is None:
        raise CorruptData("cache entry header is not format v2")
    if _TAG_LINE.fullmatch(tag_line) is None:
        raise CorruptData("cache entry tag list is not (tag, version) pairs")
    words = tag_line.decode("ascii").split()
    tags = tuple((words[i], int(words[i + 1])) for i in range(0, len(words), 2))
    data_class, expires, delta, flags = meta.groups()
    return Envelope(
        tags,
        data_class.decode("ascii"),
        int(expires),
        int(delta),
        int(flags),
        blob[: second + 1],
        blob[second + 1 :],
    )
