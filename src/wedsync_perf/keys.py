"""Every Redis key and channel wedsync-perf writes, named in one place.

All names start with `{prefix}:` (`WEDSYNC_PERF_REDIS_PREFIX`), so deployments sharing
a Redis stay apart and an operator can find, count or delete one deployment's keys by
pattern. Each key carries exactly one Redis Cluster hash tag, naming what one command,
pipeline or Lua script touches together:

| kind             | name                                        | slot shared by           |
|------------------|---------------------------------------------|--------------------------|
| cache entry      | `{p}:c:{<tenant>}:k:<digest>`               | one tenant's entries,    |
| cache tag        | `{p}:c:{<tenant>}:t:<digest>`               | tags and locks (the read |
| cache lock       | `{p}:c:{<tenant>}:k:<digest>:lock`          | script checks tags)      |
| fleet window     | `{p}:f:{<fleet>}:w:<start>`                 | one fleet's windows,     |
| fleet profile    | `{p}:f:{<fleet>}:h:<yyyymmdd>`              | profile and lease (one   |
| alert lease      | `{p}:f:{<fleet>}:lease:alerts`              | pipeline per flush)      |
| write position   | `{p}:lsn:{<cluster>:<tenant>}`              | itself (one-key script)  |
| rate limits      | `{p}:rl:` + what the `limits` library adds  | the library's own tags   |
| invalidation bus | channel `{p}:c:bus`                         | — (not a key)            |

The rate-limit prefix has no tag on purpose: `limits` wraps the keys its sliding
window touches together in braces, and only the first `{…}` of a name counts.
"""

from __future__ import annotations

import re

__all__ = ["PREFIX_PATTERN", "RedisKeys"]

PREFIX_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"
_PREFIX = re.compile(PREFIX_PATTERN)


def _tag(value: str) -> str:
    """`{value}`: a hash tag. Braces inside would end it early and split a group."""
    if not value or "{" in value or "}" in value:
        raise ValueError(f"a hash tag must be non-empty and brace-free, got {value!r}")
    return f"{{{value}}}"


class RedisKeys:
    """Names of keys and channels under one prefix; build it from
    `PerfSettings.redis_prefix` and hand it to every component that talks to Redis."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "wsp") -> None:
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise ValueError(
                f"Redis key prefix must be 1-32 of A-Z a-z 0-9 _ . - (no ':', no braces; "
                f"the ':' after it is added), got {prefix!r}"
            )
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"RedisKeys({self.prefix!r})"

    # -- cache: one slot per tenant scope -----------------------------------------

    def cache_scope(self, tenant: str) -> str:
        """`{p}:c:{tenant}`: what a tenant's entries, tags and locks start with.
        `tenant` is already an opaque digest (no personal data in key names)."""
        return f"{self.prefix}:c:{_tag(tenant)}"

    def cache_entry(self, tenant: str, digest: str) -> str:
        return f"{self.cache_scope(tenant)}:k:{digest}"

    def cache_tag(self, tenant: str, digest: str) -> str:
        return f"{self.cache_scope(tenant)}:t:{digest}"

    def cache_lock(self, entry: str) -> str:
        """The fill lock of `entry` (a `cache_entry` name): same slot as the entry."""
        if not entry.startswith(f"{self.prefix}:c:{{"):
            raise ValueError(f"not a cache entry of prefix {self.prefix!r}: {entry!r}")
        return f"{entry}:lock"

    def invalidation_channel(self) -> str:
        """Pub/sub channel of the cache's L1 invalidations (PUBLISH reaches every node
        of a cluster, so a channel needs no slot)."""
        return f"{self.prefix}:c:bus"

    # -- monitoring: one slot per fleet ---------------------------------------------

    def fleet_window(self, fleet: str, start: float) -> str:
        return f"{self.prefix}:f:{_tag(fleet)}:w:{int(start)}"

    def fleet_hourly(self, fleet: str, day: str) -> str:
        """Per-day hourly request counts (`day` as yyyymmdd)."""
        return f"{self.prefix}:f:{_tag(fleet)}:h:{day}"

    def alert_lease(self, fleet: str) -> str:
        """The lease of the one process that sends a fleet's alerts."""
        return f"{self.prefix}:f:{_tag(fleet)}:lease:alerts"

    # -- database -------------------------------------------------------------------

    def write_position(self, cluster: str, tenant: int) -> str:
        """A tenant's last write position on the PostgreSQL cluster `cluster`."""
        return f"{self.prefix}:lsn:{_tag(f'{cluster}:{tenant}')}"

    # -- rate limits ------------------------------------------------------------------

    def rate_limit_prefix(self) -> str:
        """`key_prefix` for a `limits` storage (it appends `:` and its own key)."""
        return f"{self.prefix}:rl"
