"""The scaling layer's pure parts: HPA arithmetic, queueing, traces, our policy's rules,
the USL fit, manifests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from wedsync_perf.calendar import WeddingCalendar
from wedsync_perf.scaling.autoscaler import Forecaster, Observation, WeddingAutoscaler
from wedsync_perf.scaling.capacity import fit_usl
from wedsync_perf.scaling.hpa import Hpa, MetricReading
from wedsync_perf.scaling.manifests import hpa_manifest, keda_scaled_object, validate
from wedsync_perf.scaling.model import Trace, TrafficModel, calibrate_weekly, generate_trace
from wedsync_perf.scaling.queueing import erlang_c, replicas_for, response_quantile
from wedsync_perf.scaling.simulator import ServiceModel, Static, simulate


def rps(value: float, target: float = 100.0, missing: int = 0) -> list[MetricReading]:
    return [MetricReading("rps", value, target, missing)]


def test_hpa_tolerance_ratio_and_the_scale_up_limit() -> None:
    hpa = Hpa(1, 100)
    assert hpa.step(0, 10, 10, rps(108))[0] == 10  # within 10 %: nothing
    assert hpa.step(15, 10, 10, rps(150))[0] == 15  # ceil(1.5 × 10)
    fresh = Hpa(1, 100)
    # 10x the target on 2 pods wants 20; one sync may add max(+100 %, +4) = +4 → 6
    assert fresh.step(0, 2, 2, rps(1000))[0] == 6


def test_hpa_scale_down_waits_for_the_stabilisation_window() -> None:
    hpa = Hpa(1, 100)
    hpa.step(0, 10, 10, rps(100))
    assert hpa.step(15, 10, 10, rps(20))[0] == 10  # the last 300 s wanted 10
    for t in range(30, 300, 15):
        assert hpa.step(t, 10, 10, rps(20))[0] == 10
    assert hpa.step(316, 10, 10, rps(20))[0] == 2


def test_hpa_counts_missing_pods_as_idle_on_a_scale_up() -> None:
    # 4 ready at 200 % of target, 4 starting: 800 / (100 × 8) = 1.0 → no change
    assert Hpa(1, 100).step(0, 8, 4, rps(200, missing=4))[0] == 8


def test_erlang_c_and_the_response_quantile() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    # M/M/1: response time is exponential with rate mu - lambda
    assert response_quantile(0.95, 50, 100, 1) == pytest.approx(-np.log(0.05) / 50, rel=1e-6)
    assert response_quantile(0.95, 200, 100, 2) == float("inf")


def test_replicas_for_meets_the_target_in_the_simulator_and_one_fewer_does_not() -> None:
    lam, mu, target = 850.0, 100.0, 0.05  # c - 1 replicas: stable, but p95 over target
    c = replicas_for(lam, mu, target)
    start = datetime(2027, 1, 4, tzinfo=UTC)
    flat = Trace(start, np.full(60, lam), np.zeros(60))
    service = ServiceModel(mu_rps=mu, base_s=0.0, target_s=target)
    assert simulate(flat, Static(c), service, initial=c).violation_minutes == 0
    assert simulate(flat, Static(c - 1), service, initial=c - 1).violation_minutes == 60


def test_traces_are_deterministic_and_shaped_by_the_calendar() -> None:
    model = TrafficModel(bookings={date(2027, 6, 12): 500}, per_wedding_rps=2.0, rush_minutes=2)
    a = generate_trace(model, date(2027, 6, 7), 7, seed=5)
    b = generate_trace(model, date(2027, 6, 7), 7, seed=5)
    assert np.array_equal(a.total, b.total)
    saturday = a.total[5 * 1440 : 6 * 1440]
    assert abs(int(np.argmax(saturday)) - 600) <= 5  # the 10:00 rush
    winter = generate_trace(model, date(2027, 1, 4), 7, seed=5)
    assert a.total[:1440].mean() > 5 * winter.total[:1440].mean()  # the season
    with pytest.raises(ValueError, match="168"):
        calibrate_weekly(model, [1.0] * 24)


def test_our_policy_is_ready_before_the_rush_and_never_shrinks_around_it() -> None:
    calendar = WeddingCalendar()
    model = TrafficModel(
        calendar, base_rps=200, per_wedding_rps=2.0, bookings={date(2027, 6, 12): 500}
    )
    scaler = WeddingAutoscaler(Forecaster(model), capacity_rps=630, calendar=calendar)
    before = datetime(2027, 6, 12, 9, 55, tzinfo=UTC)
    now_load = model.expected_rps(before)
    ahead = scaler.decide(Observation(before.timestamp(), 4, 4, now_load, 0.01, 0.5))
    rush_load = model.expected_rps(datetime(2027, 6, 12, 10, 0, tzinfo=UTC))
    assert ahead.replicas >= np.ceil(rush_load / 630)  # sized for 10:00 at 09:55
    during = datetime(2027, 6, 12, 10, 20, tzinfo=UTC)
    held = scaler.decide(Observation(during.timestamp(), 30, 30, 10.0, 0.01, 0.01))
    assert held.replicas == 30
    assert "no scale-down" in held.reason
    tuesday = datetime(2027, 6, 15, 10, 20, tzinfo=UTC).timestamp()
    ordinary = WeddingAutoscaler(Forecaster(model), capacity_rps=630, calendar=calendar)
    assert ordinary.decide(Observation(tuesday, 30, 30, 18_900.0, 0.01, 0.7)).replicas == 30
    quiet = ordinary.decide(Observation(tuesday + 15, 30, 30, 10.0, 0.01, 0.01))
    assert quiet.replicas == 30  # the HPA's 300 s scale-down window
    later = ordinary.decide(Observation(tuesday + 400, 30, 30, 10.0, 0.01, 0.01))
    assert later.replicas < 30  # an ordinary day scales down after it


def test_usl_fit_recovers_known_parameters() -> None:
    n = np.array([1, 2, 4, 8, 16, 32, 64], dtype=float)
    x = 100 * n / (1 + 0.05 * (n - 1) + 0.002 * n * (n - 1))
    fit = fit_usl(n, x)
    assert fit.lam == pytest.approx(100, rel=0.01)
    assert fit.sigma == pytest.approx(0.05, rel=0.05)
    assert fit.kappa == pytest.approx(0.002, rel=0.05)
    assert fit.peak_concurrency == pytest.approx(np.sqrt(0.95 / 0.002), rel=0.05)
    with pytest.raises(ValueError, match="4"):
        fit_usl([1, 2], [10, 20])


def test_manifests_validate_and_bad_ones_are_refused() -> None:
    hpa = validate(hpa_manifest("wedsync-api", min_replicas=3, max_replicas=40))
    assert hpa.spec.min_replicas == 3
    assert hpa.spec.behavior.scale_down.stabilization_window_seconds == 300
    broken = hpa_manifest("wedsync-api")
    del broken["spec"]["scaleTargetRef"]
    with pytest.raises(ValueError, match="scaleTargetRef"):
        validate(broken)
    keda = keda_scaled_object("wedsync-api", booked_dates=[date(2027, 6, 12), date(2027, 12, 27)])
    names = [t["name"] for t in keda["spec"]["triggers"]]
    assert names == ["season-saturdays", "weddings-2027-12-27", "requests-per-second"]
    assert validate(keda).name == "wedsync-api"
    keda["spec"]["triggers"][0].pop("metadata")
    with pytest.raises(ValueError, match="triggers"):
        validate(keda)
