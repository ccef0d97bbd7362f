"""Reading a running API's `/perf/stats` summary over HTTP, on the caller's httpx client
(the demo shares its load generator's). One request and one reading of the answer for
every caller, so an API that is down or refuses the token is reported the same way."""

from __future__ import annotations

from typing import Any

import httpx

from wedsync_perf.errors import WedsyncPerfError

__all__ = ["StatsUnavailable", "fetch_stats", "fetch_stats_async"]


class StatsUnavailable(WedsyncPerfError):
    """The summary could not be read: no answer, a refused token, or another status."""


def _request(
    client: httpx.Client | httpx.AsyncClient, token: str, window_s: float | None
) -> httpx.Request:
    params = {} if window_s is None else {"window": window_s}
    headers = {"Authorization": f"Bearer {token}"}
    return client.build_request("GET", "/perf/stats", params=params, headers=headers)


def _unreachable(request: httpx.Request, exc: httpx.HTTPError) -> StatsUnavailable:
    return StatsUnavailable(f"cannot reach {request.url.copy_with(query=None)}: {exc!r}")


def _summary(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 401:
        raise StatsUnavailable("the API refused the token (401)")
    if response.status_code != 200:
        where = response.url.copy_with(query=None)
        raise StatsUnavailable(f"{where} answered {response.status_code}")
    summary: dict[str, Any] = response.json()
    return summary


def fetch_stats(client: httpx.Client, token: str, window_s: float | None = None) -> dict[str, Any]:
    """The summary of the last `window_s` seconds (the server's default when None)."""
    request = _request(client, token, window_s)
    try:
        response = client.send(request)
    except httpx.HTTPError as exc:
        raise _unreachable(request, exc) from None
    return _summary(response)


async def fetch_stats_async(
    client: httpx.AsyncClient, token: str, window_s: float | None = None
) -> dict[str, Any]:
    """`fetch_stats` for an event loop."""
    request = _request(client, token, window_s)
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise _unreachable(request, exc) from None
    return _summary(response)
