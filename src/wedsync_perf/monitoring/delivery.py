"""Alert delivery: to Alertmanager's v2 API when there is one (it groups, silences,
inhibits and repeats — none of that is re-implemented here), else to a webhook (JSON,
or a Slack incoming-webhook body) signed with HMAC-SHA256, else to the log.

Sending never blocks evaluation: notifications go through a bounded queue (the oldest
is dropped and counted when it is full) to one background sender that retries
connection errors, 429 and 5xx with exponential backoff.

Payloads are built from the alert's rule name, severity, labels (objective, window,
regime, route template, method), summary and value — what `alerts` put there, which is
never a raw path, query, token or host name. The receiver's own URL is not in them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.monitoring.alerts import Alert

__all__ = [
    "AlertmanagerSink",
    "LogSink",
    "Notifier",
    "Sink",
    "WebhookSink",
    "alert_payload",
    "sign",
]

_log = logging.getLogger("wedsync_perf.alerts")

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class Sink(Protocol):
    """Where alerts go. `resend_firing`: the sink expects firing alerts to be sent
    again periodically (Alertmanager resolves an alert it has not heard of lately)."""

    resend_firing: bool

    async def send(self, alerts: Sequence[Alert]) -> None: ...


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def alert_payload(alert: Alert, service: str) -> dict[str, Any]:
    """The one place an alert becomes outgoing data."""
    return {
        "status": "resolved" if alert.state == "resolved" else "firing",
        "labels": {"alertname": alert.name, "severity": alert.severity, "service": service,
                   **alert.labels},
        "annotations": {"summary": alert.summary,
                        **({"value": f"{alert.value:.4g}"} if alert.value is not None else {})},
        "startsAt": _iso(alert.fired_at or alert.active_since),
        "endsAt": _iso(alert.resolved_at),
        "fingerprint": alert.fingerprint,
    }  # fmt: skip


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `timestamp.body` (the timestamp is signed so a
    captured request cannot be replayed later under a new one)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _HttpSink:
    def __init__(self, url: str, *, timeout_s: float, attempts: int, backoff_s: float) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    return
                if response.status_code not in _RETRY_STATUS:
                    _log.error(
                        "alert receiver refused the notification: HTTP %d", response.status_code
                    )
                    return
                problem = f"HTTP {response.status_code}"
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        _log.error("alert notification dropped after %d attempts (%s)", self.attempts, problem)

    async def aclose(self) -> None:
        await self._client.aclose()


class AlertmanagerSink(_HttpSink):
    """`POST {base}/api/v2/alerts`: firing alerts are re-sent on every evaluation
    round (Alertmanager resolves what it stops hearing about), resolved ones carry
    `endsAt`."""

    resend_firing = True

    def __init__(self, base_url: str, *, service: str = "wedsync-api", timeout_s: float = 5.0,
                 attempts: int = 4, backoff_s: float = 0.5) -> None:  # fmt: skip
        super().__init__(base_url.rstrip("/") + "/api/v2/alerts", timeout_s=timeout_s,
                         attempts=attempts, backoff_s=backoff_s)  # fmt: skip
        self.service = service

    async def send(self, alerts: Sequence[Alert]) -> None:
        body = []
        for alert in alerts:
            payload = alert_payload(alert, self.service)
            body.append({k: payload[k] for k in ("labels", "annotations", "startsAt", "endsAt")
                         if payload[k] is not None})  # fmt: skip
        await self._post(self.url, orjson.dumps(body), {"content-type": "application/json"})


class WebhookSink(_HttpSink):
    """JSON `{"alerts": [...]}` (or Slack's `{"text": ...}`), signed in
    `X-Wedsync-Signature` with `X-Wedsync-Timestamp`. Sent on changes only."""

    resend_firing = False

    def __init__(self, url: str, secret: bytes | None, *, slack: bool = False,
                 service: str = "wedsync-api", timeout_s: float = 5.0, attempts: int = 4,
                 backoff_s: float = 0.5) -> None:  # fmt: skip
        super().__init__(url, timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s)
        self.secret = secret
        self.slack = slack
        self.service = service

    def body(self, alerts: Sequence[Alert]) -> bytes:
        if self.slack:
            lines = [
                f"{'RESOLVED' if a.state == 'resolved' else a.severity.upper()}: {a.summary}"
                for a in alerts
            ]
            return orjson.dumps({"text": "\n".join(lines)})
        return orjson.dumps(
            {"version": 1, "service": self.service,
             "alerts": [alert_payload(a, self.service) for a in alerts]}
        )  # fmt: skip

    async def send(self, alerts: Sequence[Alert]) -> None:
        body = self.body(alerts)
        headers = {"content-type": "application/json"}
        if self.secret:
            timestamp = str(int(time.time()))
            headers["x-wedsync-timestamp"] = timestamp
            headers["x-wedsync-signature"] = sign(self.secret, timestamp, body)
        await self._post(self.url, body, headers)


class LogSink:
    """The fallback: one log line per change (the demo prints these)."""

    resend_firing = False

    async def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            state = "RESOLVED" if alert.state == "resolved" else f"FIRING {alert.severity}"
            _log.warning("alert %s: %s", state, alert.summary)

    async def aclose(self) -> None:
        return None


class Notifier:
    """A bounded queue in front of one sink, drained by a background task."""

    def __init__(self, sink: Sink, *, max_queue: int = 100) -> None:
        self.sink = sink
        self.dropped = 0
        self.sent = 0
        self._queue: asyncio.Queue[list[Alert]] = asyncio.Queue(maxsize=max_queue)
        self._loop = BackgroundLoop(self._drain, "wedsync-perf-alert-sender")

    def start(self) -> None:
        self._loop.start()

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Send what is queued (within `drain_timeout_s`), then stop."""
        if self._loop.running:
            try:
                async with asyncio.timeout(drain_timeout_s):
                    await self._queue.join()
            except TimeoutError:
                _log.warning("alert sender stopped with %d batches unsent", self._queue.qsize())
        await self._loop.stop()
        close = getattr(self.sink, "aclose", None)
        if close is not None:
            await close()

    def submit(self, alerts: Sequence[Alert]) -> None:
        """Queue a batch; never blocks. A full queue loses its oldest batch."""
        if not alerts:
            return
        batch = [Alert(**vars(a)) for a in alerts]  # a snapshot: the engine mutates its own
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        self._queue.put_nowait(batch)

    async def _drain(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self.sink.send(batch)
                self.sent += len(batch)
            except Exception:  # a sink bug must not kill alerting
                _log.exception("alert sink failed")
            finally:
                self._queue.task_done()
