"""SLO counting and burn-rate alerting on a simulated clock (windows built directly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wedsync_perf.calendar import Regime
from wedsync_perf.errors import ConfigError
from wedsync_perf.monitoring.alerts import AlertEngine, Condition, ThresholdRule, burn_conditions
from wedsync_perf.monitoring.recorder import DEFAULT_EDGES, Window
from wedsync_perf.monitoring.slo import DEFAULT_SLOS, BurnWindow, Objective, SloConfig, SloTracker
from wedsync_perf.testing import synthetic_window

EDGES = tuple(sorted(set(DEFAULT_EDGES) | DEFAULT_SLOS.thresholds_s()))
W = 10.0


def tracker_with(windows: list[tuple[int, int, int]], start: float = 0.0) -> SloTracker:
    """(fast, slow, errors) per 10 s window, in order."""
    tracker = SloTracker(DEFAULT_SLOS, EDGES, W)
    for i, (fast, slow, errors) in enumerate(windows):
        tracker.ingest(
            synthetic_window(start + i * W, EDGES, fast=fast, slow=slow, errors=errors, slow_s=0.15)
        )
    return tracker


def objective(name: str):  # type: ignore[no-untyped-def]
    return next(o for o in DEFAULT_SLOS.objectives if o.name == name)


def test_latency_is_counted_exactly_against_the_regimes_threshold() -> None:
    tracker = tracker_with([(90, 10, 0)])  # 10 requests at 150 ms
    latency = objective("critical-latency")
    assert tracker.counts(latency, Regime.SEASON, 0, W) == (100, 100)  # 150 ms < 200 ms
    assert tracker.counts(latency, Regime.WEDDING_DAY, 0, W) == (90, 100)  # > 100 ms
    burn, total = tracker.burn_rate(latency, Regime.WEDDING_DAY, W, W)
    assert total == 100
    assert burn == pytest.approx(0.10 / 0.01)


def test_availability_counts_5xx_as_bad_and_latency_ignores_them() -> None:
    tracker = tracker_with([(95, 0, 5)])
    assert tracker.counts(objective("availability"), Regime.SEASON, 0, W) == (95, 100)
    assert tracker.counts(objective("critical-latency"), Regime.SEASON, 0, W) == (95, 95)
    # standard-latency selects the standard class only: nothing here
    assert tracker.counts(objective("standard-latency"), Regime.SEASON, 0, W) == (0, 0)


def test_a_lasting_full_outage_pages_and_a_one_minute_blip_does_not() -> None:
    hour = [(20, 0, 0)] * 360 * 6  # six quiet hours: the 6 h window is full
    engine = AlertEngine()

    def run(pattern: list[tuple[int, int, int]]) -> float | None:
        tracker = SloTracker(DEFAULT_SLOS, EDGES, W)
        fired = None
        for i, (fast, slow, errors) in enumerate(hour + pattern):
            tracker.ingest(synthetic_window(i * W, EDGES, fast=fast, slow=slow, errors=errors))
            now = (i + 1) * W
            changed = engine.update(burn_conditions(tracker, Regime.SEASON, now), now)
            if fired is None and any(a.state == "firing" and a.severity == "page" for a in changed):
                fired = now - len(hour) * W
        return fired

    outage = run([(0, 0, 20)] * 30)
    assert outage is not None
    assert outage <= 120  # within 2 minutes of the start
    engine = AlertEngine()
    assert run([(0, 0, 20)] * 6 + [(20, 0, 0)] * 60) is None


def test_alerts_are_deduplicated_and_resolve_once() -> None:
    engine = AlertEngine()
    on = Condition("X", "page", {"route": "/a"}, True, 1.0, for_s=20, summary="x")
    off = Condition("X", "page", {"route": "/a"}, False, 0.0, for_s=20, summary="x")
    assert engine.update([on], 0) == []
    assert [a.state for a in engine.active()] == ["pending"]
    assert [a.state for a in engine.update([on], 20)] == ["firing"]
    assert engine.update([on], 30) == []  # still one alert, nothing new to say
    assert len(engine.active()) == 1
    [resolved] = engine.update([off], 40)
    assert resolved.state == "resolved"
    assert resolved.resolved_at == 40
    assert engine.update([off], 50) == []


def test_a_pending_alert_that_clears_never_notifies() -> None:
    engine = AlertEngine()
    engine.update([Condition("X", "page", {}, True, 1.0, 60, "x")], 0)
    assert engine.update([Condition("X", "page", {}, False, 0.0, 60, "x")], 30) == []
    assert not engine.resolved


def test_threshold_rules_fire_above_or_below_and_ignore_no_data() -> None:
    values = iter([0.95, None, 0.2])
    rule = ThresholdRule("PoolSaturated", "ticket", lambda: next(values), 0.9, for_s=0)
    assert rule.condition().active
    assert not rule.condition().active
    hit = ThresholdRule("CacheHitRatioLow", "ticket", lambda: 0.2, 0.5, above=False)
    assert hit.condition().active


def test_slo_toml_errors_name_the_field(tmp_path: Path) -> None:
    good = tmp_path / "slo.toml"
    good.write_text(
        '[[objectives]]\nname = "timeline"\nkind = "latency"\nroute = "/weddings/{id}/timeline"\n'
        "objective = 0.995\nthreshold_ms = 150\nwedding_day = { objective = 0.999, threshold_ms = 80 }\n"
    )
    config = SloConfig.from_toml(good)
    assert config.thresholds_s() == {0.15, 0.08}
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[objectives]]\nname = "x"\nkind = "latency"\nobjective = 1.5\nthreshold_ms = 1\n'
    )
    with pytest.raises(ConfigError, match=r"objectives\.0\.objective"):
        SloConfig.from_toml(bad)
    missing = tmp_path / "missing.toml"
    missing.write_text('[[objectives]]\nname = "x"\nkind = "latency"\nobjective = 0.9\n')
    with pytest.raises(ConfigError, match="threshold_ms"):
        SloConfig.from_toml(missing)
    with pytest.raises(ConfigError, match="recorder edges"):
        SloTracker(config, DEFAULT_EDGES, W)


def test_a_burn_exactly_at_the_bar_pages_and_just_under_it_does_not() -> None:
    # The traffic of the promtool boundary test (tests/integration/test_slo_rules.py):
    # half failing against a 25 % budget is exactly 2x; the evaluator, like the rules,
    # compares with >=.
    exact = SloConfig(
        objectives=(Objective(name="avail", kind="availability", objective=0.75),),
        windows=(BurnWindow(severity="page", long_s=600, short_s=120, burn=2, confirm_s=30),),
    )
    for (ok, bad), pages in (((30, 30), True), ((31, 29), False)):
        tracker = SloTracker(exact, EDGES, 15)
        for i in range(60):
            tracker.ingest(synthetic_window(i * 15, EDGES, fast=ok, errors=bad))
        [condition] = burn_conditions(tracker, Regime.SEASON, 60 * 15)
        assert condition.active is pages


def test_a_page_lasts_while_the_last_errors_are_inside_the_confirmation() -> None:
    # The promtool test's two-minute burst on 15 s windows: the page still fires while
    # the last errors' window is inside [now - 30 s, now), and resolves when it leaves.
    day, burst = 24 * 240, 8
    tracker, engine = SloTracker(DEFAULT_SLOS, EDGES, 15), AlertEngine()
    quiet = synthetic_window(0, EDGES, fast=30).series
    for i in range(day):
        tracker.ingest(Window(i * 15, quiet))
    paging: dict[float, bool] = {}
    for i in range(day, day + burst + 8):
        errors = 30 if i < day + burst else 0
        tracker.ingest(synthetic_window(i * 15, EDGES, fast=30 - errors, errors=errors))
        now = (i + 1) * 15
        engine.update(burn_conditions(tracker, Regime.SEASON, now), now)
        paging[now - (day + burst) * 15] = any(a.severity == "page" for a in engine.firing())
    assert paging[0]  # the last errors just in
    assert paging[15]  # their window [−15 s, 0) still inside [now − 30 s, now)
    assert not paging[30]
