"""The alerting loop of one process: every window, ingest the windows that closed into
the SLO tracker, evaluate every rule, update the alert engine, hand changes to the
notifier.

With a fleet store (Redis), windows come from the fleet view, and only one process —
the holder of a short Redis lease, renewed each round — notifies, so five workers do
not send five pages. The others still evaluate, for their dashboards. While Redis does
not answer (each lease call bounded by the fleet store's guard, nothing at all while
its breaker is open) every process notifies: duplicate pages beat none, and
`report()["lease"]` says "unavailable".
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.calendar import Regime
from wedsync_perf.monitoring.alerts import (
    Alert,
    AlertEngine,
    Condition,
    ThresholdRule,
    burn_conditions,
    route_p95_rules,
)
from wedsync_perf.monitoring.delivery import Notifier
from wedsync_perf.monitoring.fleet import FleetStore
from wedsync_perf.monitoring.recorder import Recorder, Window
from wedsync_perf.monitoring.slo import SloConfig, SloTracker

__all__ = ["AlertEvaluator"]

_log = logging.getLogger(__name__)


class AlertEvaluator:
    def __init__(
        self,
        recorder: Recorder,
        slos: SloConfig,
        regime_at: Callable[[float], Regime],
        latency_target_ms: Callable[[str, Regime], float | None],
        *,
        notifier: Notifier | None = None,
        store: FleetStore | None = None,
        summary: Callable[[float], Any] | None = None,
        clock: Callable[[], float],
        resend_s: float = 60.0,
    ) -> None:
        self.recorder = recorder
        self.tracker = SloTracker(slos, recorder.edges, recorder.window_s)
        self.engine = AlertEngine()
        self.rules: list[ThresholdRule] = []
        self.notifier = notifier
        self.store = store
        self.regime_at = regime_at
        self.latency_target_ms = latency_target_ms
        self.summary = summary
        self.clock = clock
        self.resend_s = resend_s
        self.leader = store is None
        self.lease = "none" if store is None else "unknown"  # held, elsewhere, unavailable
        self._lease_id = uuid.uuid4().hex
        self._last_resend = 0.0
        self._loop = BackgroundLoop(self._run, "wedsync-perf-alerts")
        self.last_error: str | None = None

    def add_rule(self, rule: ThresholdRule) -> None:
        self.rules.append(rule)

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self.notifier is not None:
            await self.notifier.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.recorder.window_s)
            try:
                await self.evaluate()
                self.last_error = None
            except Exception as exc:  # keep evaluating; the next round may work
                self.last_error = type(exc).__name__
                _log.exception("alert evaluation failed")

    async def _closed_windows(self, now: float) -> list[Window]:
        since = (self.tracker.last_start or now - self.recorder.retention_s) + 1e-6
        if self.store is not None:
            try:
                windows = await self.store.read(since, now)
                settled = now - self.recorder.window_s - self.store.settle_s
                return [w for w in windows if w.start + self.recorder.window_s <= settled]
            except Exception as exc:  # Redis down: this process's own windows, not nothing
                _log.debug("fleet read failed (%s): evaluating local windows", type(exc).__name__)
        return [w for w in self.recorder.windows(since) if w.start + self.recorder.window_s <= now]

    async def _lead(self) -> bool:
        """Hold (or take) the notification lease; True when this process holds it."""
        if self.store is None:
            return True
        store = self.store
        try:
            held = await store.guard.call(
                "alert lease", lambda: self._hold(store), timeout_s=store.timeout_s
            )
        except Exception as exc:  # cannot coordinate: notify rather than stay silent
            self.lease = "unavailable"
            _log.debug("alert lease unavailable (%s): notifying", type(exc).__name__)
            return True
        self.lease = "held" if held else "elsewhere"
        return held

    async def _hold(self, store: FleetStore) -> bool:
        key = store.lease_key()
        ttl_ms = int(self.recorder.window_s * 3000)
        redis = store.redis
        if await redis.set(key, self._lease_id, nx=True, px=ttl_ms):
            return True
        holder = await redis.get(key)
        if holder is not None and holder.decode() == self._lease_id:
            await redis.pexpire(key, ttl_ms)
            return True
        return False

    async def evaluate(self, now: float | None = None) -> list[Alert]:
        """One round; returns the alerts that fired or resolved in it."""
        now = self.clock() if now is None else now
        for window in await self._closed_windows(now):
            self.tracker.ingest(window)
        regime = self.regime_at(now)
        conditions: list[Condition] = burn_conditions(self.tracker, regime, now)
        conditions += [rule.condition() for rule in self.rules]
        if self.summary is not None:
            routes = (await self.summary(300.0))["routes"]
            conditions += route_p95_rules(routes, lambda p: self._target(p, regime))
        changed = self.engine.update(conditions, now)
        self.leader = await self._lead()
        if self.notifier is not None and self.leader:
            self.notifier.submit(changed)
            firing = self.engine.firing()
            if (
                self.notifier.sink.resend_firing
                and firing
                and now - self._last_resend >= self.resend_s
            ):
                self.notifier.submit(firing)
                self._last_resend = now
        return changed

    def _target(self, priority: str, regime: Regime) -> float:
        target = self.latency_target_ms(priority, regime)
        return float("inf") if target is None else target

    def report(self) -> dict[str, Any]:
        now = self.clock()
        regime = self.regime_at(now)
        return {
            "regime": regime.value,
            "evaluated_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "objectives": self.tracker.as_dict(regime, now),
            "active": [a.as_dict() for a in self.engine.active()],
            "recently_resolved": [a.as_dict() for a in list(self.engine.resolved)[-10:]],
            "leader": self.leader,
            "lease": self.lease,
            "notifications": None
            if self.notifier is None
            else {"sent": self.notifier.sent, "dropped": self.notifier.dropped},
            "last_error": self.last_error,
        }
