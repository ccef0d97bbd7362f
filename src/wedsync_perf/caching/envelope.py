"""The stored form of a cache entry.

    line 1: the entry's tags and their versions when it was written: "tagkey ver …"
    line 2: "expires_ms delta_ms flags"  (absolute expiry, loader time, bit 0 = sealed)
    rest:   the payload (serialised value, sealed when the data class is sensitive)

The first line is plain text on purpose: the Redis read script checks each tag's
current version against it and answers "miss" without the client ever seeing a stale
value. `delta_ms` (how long the loader took) drives probabilistic early recomputation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wedsync_perf.errors import CorruptData

__all__ = ["Envelope", "parse", "render"]

SEALED = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    tags: tuple[tuple[str, int], ...]
    expires_ms: int
    delta_ms: int
    flags: int
    payload: bytes


def render(
    tags: Sequence[tuple[str, int]], expires_ms: int, delta_ms: int, flags: int, payload: bytes
) -> bytes:
    head = " ".join(f"{key} {version}" for key, version in tags)
    return f"{head}\n{expires_ms} {delta_ms} {flags}\n".encode() + payload


def parse(blob: bytes) -> Envelope:
    """Raises ValueError (`CorruptData` or a bad number's) on anything malformed: the
    cache treats it as a miss."""
    first = blob.find(b"\n")
    second = blob.find(b"\n", first + 1)
    if first < 0 or second < 0:
        raise CorruptData("cache entry has no header")
    words = blob[:first].decode("ascii").split()
    if len(words) % 2:
        raise CorruptData(f"cache entry tag list has {len(words)} words, not (tag, version) pairs")
    tags = tuple((words[i], int(words[i + 1])) for i in range(0, len(words), 2))
    expires, delta, flags = (int(x) for x in blob[first + 1 : second].split())
    return Envelope(tags, expires, delta, flags, blob[second + 1 :])
