"""The one Redis client of a process, built on purpose rather than with redis-py's
defaults (a 5 s socket timeout, a pool that raises `MaxConnectionsError` when full, ten
retries with back-off on any connection error).

* **Pool**: a `BlockingConnectionPool` of `max_connections`. A caller that finds every
  connection busy waits at most `pool_timeout_s` and then gets redis-py's
  `ConnectionError("No connection available.")`, which every user of the client turns
  into a miss or a fallback. Size it with `pool_size`: the requests the instance admits
  at once, plus a few for background work.
* **Timeouts**: connecting and each reply are bounded (`connect_timeout_s`,
  `socket_timeout_s`), so a hung server (SIGSTOP) costs a call at most that.
* **Restarts**: a pooled connection the server has closed is found before use (redis-py
  checks for pending data or EOF when it hands one out) and, for what that misses, a
  call retries once at once on a *connection* error, never on a timeout (a hung server
  would cost twice). A connection idle longer than `health_check_interval_s` is
  PINGed before use.

Subscriptions get their own connection without any retry (`subscriber_client`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from wedsync_perf.errors import InvalidValue

__all__ = ["BACKGROUND_CONNECTIONS", "create_redis", "pool_size", "subscriber_client"]

BACKGROUND_CONNECTIONS = 4
"""Connections kept beyond the request path's: the fleet flush, the alert lease, cache
refreshes running after their request answered."""


def pool_size(concurrent_requests: int) -> int:
    """Connections for an instance that admits `concurrent_requests` at once: a request
    makes one Redis call at a time, so beyond that a request waits for a connection
    (boundedly) instead of opening one more."""
    if concurrent_requests < 1:
        raise InvalidValue("concurrent_requests", concurrent_requests, "at least 1 request")
    return concurrent_requests + BACKGROUND_CONNECTIONS


def create_redis(
    url: str,
    *,
    max_connections: int,
    pool_timeout_s: float = 0.05,
    connect_timeout_s: float = 0.25,
    socket_timeout_s: float = 0.25,
    health_check_interval_s: float = 10.0,
) -> Redis:
    """A client for `url` over a bounded, blocking pool (see the module docstring).
    Closing the client closes its pool. Raises `InvalidValue` for a bound that is not
    positive (0 is allowed for `pool_timeout_s`: do not wait at all)."""
    if max_connections < 1:
        raise InvalidValue("max_connections", max_connections, "at least 1 connection")
    for name, value in (("connect_timeout_s", connect_timeout_s),
                        ("socket_timeout_s", socket_timeout_s)):  # fmt: skip
        if value <= 0:
            raise InvalidValue(name, value, "a positive number of seconds")
    if pool_timeout_s < 0:
        raise InvalidValue("pool_timeout_s", pool_timeout_s, "0 or more seconds")
    if health_check_interval_s < 0:
        raise InvalidValue("health_check_interval_s", health_check_interval_s, "0 or more s")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=socket_timeout_s,
        socket_keepalive=True,
        health_check_interval=health_check_interval_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis.from_pool(pool)


def subscriber_client(client: Redis) -> Redis:
    """A client for one pub/sub subscription beside `client`: same server, credentials
    and timeouts, its own connection, and no retry and no implicit health check.

    A retried subscription reconnects and resubscribes without telling anyone, and
    whatever was published while it was away is lost: a subscriber that must know of
    every gap (the cache's invalidation bus) has to see the error instead."""
    source = client.connection_pool
    kwargs: dict[str, Any] = {
        k: v
        for k, v in source.connection_kwargs.items()
        if k not in ("himport_registry", "retry", "retry_on_error", "health_check_interval")
    }
    pool = ConnectionPool(
        connection_class=source.connection_class,
        max_connections=2,  # the subscription, and the next one while the last closes
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        **kwargs,
    )
    return Redis.from_pool(pool)
