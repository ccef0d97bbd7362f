"""Alert delivery against real receivers: a local HTTP webhook (signature, retries,
Slack body) and a real Alertmanager (Debian's binary, unpacked by `make tools`)."""

from __future__ import annotations

import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from wedsync_perf.monitoring.alerts import AlertEngine, Condition, route_p95_rules
from wedsync_perf.monitoring.delivery import AlertmanagerSink, Notifier, WebhookSink, sign
from wedsync_perf.testing import free_port, wait_for_http

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook endpoint that answers 503 to the first `failures` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def firing_alert() -> list:  # type: ignore[type-arg]
    engine = AlertEngine()
    conditions = route_p95_rules(
        [{"route": "/weddings/{wedding_id}/timeline", "method": "GET", "priority": "critical",
          "count": 500, "p95_ms": 240.0}],
        lambda priority: 100.0,
        for_s=0,
    )  # fmt: skip
    return engine.update(conditions, 1000.0)


async def test_webhook_is_signed_retried_and_carries_no_secrets(receiver: Receiver) -> None:
    secret = b"webhook-secret"
    url = f"http://127.0.0.1:{receiver.port}/hooks/T0KEN-IN-URL"
    notifier = Notifier(WebhookSink(url, secret, backoff_s=0.01))
    notifier.start()
    notifier.submit(firing_alert())
    await notifier.stop()
    assert len(receiver.bodies) == 1  # two 503s, then delivered once
    headers, body = receiver.bodies[0]
    expected = sign(secret, headers["x-wedsync-timestamp"], body)
    assert hmac.compare_digest(headers["x-wedsync-signature"], expected)
    payload = json.loads(body)
    [alert] = payload["alerts"]
    assert alert["labels"]["route"] == "/weddings/{wedding_id}/timeline"
    assert alert["status"] == "firing"
    for secretish in ("T0KEN", "127.0.0.1", "webhook-secret", "hooks"):
        assert secretish not in body.decode()


async def test_slack_body_and_a_full_queue_drops_the_oldest() -> None:
    receiver = Receiver()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/", None, slack=True)
        notifier = Notifier(sink, max_queue=2)
        for _ in range(3):  # not started: the queue fills, the first batch is dropped
            notifier.submit(firing_alert())
        assert notifier.dropped == 1
        notifier.start()
        await notifier.stop()
        assert len(receiver.bodies) == 2
        text = json.loads(receiver.bodies[0][1])["text"]
        assert text.startswith("TICKET: GET /weddings/{wedding_id}/timeline: p95 240.0 ms")
    finally:
        receiver.close()


def alertmanager_binary() -> str:
    venv_copy = Path(sys.executable).parent.parent / "tools" / "alertmanager"
    for candidate in (os.environ.get("ALERTMANAGER"), str(venv_copy), shutil.which("alertmanager")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("alertmanager not found: run `make tools` (Debian prometheus-alertmanager)")


async def test_a_real_alertmanager_receives_firing_then_resolved(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "am.yml"
    config.write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    process = subprocess.Popen(  # noqa: ASYNC220 - a real peer for the test
        [alertmanager_binary(), f"--config.file={config}", f"--storage.path={tmp_path}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            await wait_for_http(client, "/-/ready", timeout_s=30)
            engine = AlertEngine()
            on = Condition("WedsyncSLOBurnRate", "page", {"objective": "availability",
                           "window": "1h/5m", "regime": "season"}, True, 20.0, 0, "burning")  # fmt: skip
            sink = AlertmanagerSink(base)
            await sink.send(engine.update([on], 1000.0))
            [got] = (await client.get("/api/v2/alerts")).json()
            assert got["labels"]["alertname"] == "WedsyncSLOBurnRate"
            assert got["labels"]["objective"] == "availability"
            assert got["labels"]["service"] == "wedsync-api"
            assert got["status"]["state"] == "active"
            off = Condition(on.name, on.severity, on.labels, False, 0.0, 0, "ok")
            await sink.send(engine.update([off], 1010.0))  # endsAt in the past: resolved
            assert (await client.get("/api/v2/alerts", params={"active": "true"})).json() == []
            await sink.aclose()
    finally:
        process.terminate()
        process.wait(10)
