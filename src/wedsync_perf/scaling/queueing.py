"""Response-time percentiles of c identical servers sharing one queue (M/M/c), and the
smallest c that meets a percentile target — Erlang C with the response-time (not just
waiting-time) distribution:

    P(T > t) = e^(−μt) + C·μ/((c−1)μ − λ) · (e^(−μt) − e^(−(cμ−λ)t))

(C: Erlang C probability of waiting). Used by the capacity planner and, per step, by
the simulator (power-of-two-choices balancing approaches the shared queue).
"""

from __future__ import annotations

import math

from wedsync_perf.errors import InvalidValue

__all__ = ["erlang_c", "replicas_for", "response_quantile", "response_tail"]


def erlang_c(c: int, offered: float) -> float:
    """Probability an arrival waits, for `offered` = λ/μ erlangs on `c` servers."""
    if c <= 0:
        raise InvalidValue("c", c, "at least 1 server")
    if offered >= c:
        return 1.0
    # Erlang B by the stable recursion, then C from B.
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    return b / (1 - (offered / c) * (1 - b))


def response_tail(t: float, lam: float, mu: float, c: int) -> float:
    """P(response time > t) in M/M/c (1 if the system is overloaded)."""
    if lam >= c * mu:
        return 1.0
    wait = erlang_c(c, lam / mu)
    service = math.exp(-mu * t)
    denominator = (c - 1) * mu - lam
    if abs(denominator) < 1e-12:  # limit: the two exponentials coincide
        return service + wait * mu * t * service
    return service + wait * mu / denominator * (service - math.exp(-(c * mu - lam) * t))


def response_quantile(q: float, lam: float, mu: float, c: int) -> float:
    """The q-quantile of response time (s); inf when overloaded."""
    if lam >= c * mu:
        return math.inf
    low, high = 0.0, 1.0 / mu
    while response_tail(high, lam, mu, c) > 1 - q:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        if response_tail(mid, lam, mu, c) > 1 - q:
            low = mid
        else:
            high = mid
    return high


def replicas_for(
    lam: float, mu: float, target_s: float, q: float = 0.95, *, max_c: int = 10_000
) -> int:
    """Smallest c whose q-quantile response time is at most `target_s`."""
    if mu <= 0:
        raise InvalidValue("mu", mu, "a positive service rate")
    if target_s <= 0:
        raise InvalidValue("target_s", target_s, "a positive number of seconds")
    if lam <= 0:
        return 1
    alone_s = -math.log(1 - q) / mu
    if alone_s > target_s:
        raise InvalidValue(
            "target_s", target_s, f"at least the service time's own quantile ({alone_s:g} s)"
        )
    c = max(1, math.floor(lam / mu) + 1)
    while c <= max_c:
        if response_tail(target_s, lam, mu, c) <= 1 - q:
            return c
        c += 1
    raise InvalidValue("max_c", max_c, f"a higher cap: more replicas are needed for {target_s:g} s")
