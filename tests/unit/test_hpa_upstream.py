"""The Kubernetes HPA controller's own test tables (kubernetes/kubernetes,
pkg/controller/podautoscaler/horizontal_test.go and replica_calculator_test.go), run
against `wedsync_perf.scaling.hpa`. Case ids are the upstream names; inputs and
expected values are upstream's, restated in our types (per-pod samples become the
average over ready pods plus missing/unready counts; events and recommendations are
placed at the offsets upstream's helpers give them)."""

from __future__ import annotations

import math

import pytest

from wedsync_perf.errors import InvalidValue
from wedsync_perf.scaling.hpa import (
    DEFAULT_DOWN,
    DEFAULT_UP,
    Hpa,
    MetricReading,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    rate_limited,
    stabilised,
)

NOW = 10_000.0


def rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> ScalingRules:
    """upstream generateScalingRules: a Pods and/or a Percent policy, select Max."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, tuple(policies))


def spread(changes: list[int], period_s: int, sign: int = 1) -> list[ScaleEvent]:
    """upstream generateEventsUniformDistribution: each event at the centre of its
    share of the last `period_s` seconds (whole seconds, as its Duration conversion)."""
    segment = period_s / len(changes)
    return [
        ScaleEvent(NOW - int(period_s - segment * (i + 1) + segment / 2), sign * change)
        for i, change in enumerate(changes)
    ]


# (name, up events, down events, min, max, up rules, down rules, current, desired,
#  expected replicas, expected condition); None rules = the API's defaults.
SCALING_WITH_RULES = [
    ("prenormalized desired replicas within range", [], [], 3, 8, None, None, 5, 7, 7, "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", [], [], 2, 8, None, None, 3, 1, 2, "TooFewReplicas"),
    ("prenormalized desired replicas within range when minReplicas is 0", [], [], 0, 10, None, None, 1, 0, 0, "DesiredWithinRange"),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", [], [], 1, 10, None, None, 20, 1000, 10, "TooManyReplicas"),
    ("desired replica count is more than the maximum replica count", [], [], 100, 150, None, None, 100, 1000, 150, "TooManyReplicas"),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", [], [], 1, 2000, rules(0, 0, 1, 60, 0), None, 3, 1000, 4, "ScaleUpLimit"),
    # upstream marks this one testThis and skips it; its expectation holds here
    ("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", [], [], 3, 2000, None, rules(20, 60, 0, 0, 0), 1000, 3, 980, "ScaleDownLimit"),
    ("scaleUp with default behavior", [], [], 1, 1000, None, None, 10, 50, 20, "ScaleUpLimit"),
    ("scaleUp with pods policy larger than percent policy", [], [], 1, 1000, rules(100, 60, 100, 60, 0), None, 10, 500, 110, "ScaleUpLimit"),
    ("scaleUp with percent policy larger than pods policy", [], [], 1, 1000, rules(2, 60, 100, 60, 0), None, 10, 500, 20, "ScaleUpLimit"),
    ("scaleUp with spec MaxReplicas limitation with large pod policy", [], [], 1, 1000, rules(100, 60, 0, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
    ("scaleUp with spec MaxReplicas limitation with large percent policy", [], [], 1, 1000, rules(10000, 60, 0, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
    ("scaleUp with pod policy limitation", [], [], 1, 1000, rules(30, 60, 0, 0, 0), None, 10, 50, 40, "ScaleUpLimit"),
    ("scaleUp with percent policy limitation", [], [], 1, 1000, rules(0, 0, 200, 60, 0), None, 10, 50, 30, "ScaleUpLimit"),
    ("scaleDown with percent policy larger than pod policy", [], [], 1, 1000, None, rules(20, 60, 1, 60, 300), 100, 2, 80, "ScaleDownLimit"),
    ("scaleDown with pod policy larger than percent policy", [], [], 1, 1000, None, rules(2, 60, 1, 60, 300), 100, 2, 98, "ScaleDownLimit"),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy", [], [], 1, 1000, None, rules(100, 60, 0, 0, 300), 10, 0, 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large pod policy", [], [], 1, 1000, None, rules(100, 60, 0, 0, 300), 10, 0, 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large percent policy", [], [], 5, 1000, None, rules(0, 0, 100, 60, 300), 10, 2, 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation", [], [], 1, 1000, None, rules(5, 60, 0, 0, 300), 10, 2, 5, "ScaleDownLimit"),
    ("scaleDown with percent policy limitation", [], [], 1, 1000, None, rules(0, 0, 50, 60, 300), 10, 5, 5, "DesiredWithinRange"),
    ("scaleUp with spec MaxReplicas limitation with large pod policy and events", [1, 5, 9], [], 1, 200, rules(300, 60, 0, 0, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("scaleUp with spec MaxReplicas limitation with large percent policy and events", [1, 5, 9], [], 1, 200, rules(0, 0, 10000, 60, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", [1, 5, 9], [], 1, 1000, rules(5, 120, 0, 0, 0), None, 100, 500, 100, "ScaleUpLimit"),
    ("scaleUp with pod policy and previous scale up events", [1, 5, 9], [], 1, 1000, rules(150, 120, 0, 0, 0), None, 100, 500, 235, "ScaleUpLimit"),
    ("scaleUp with percent policy and previous scale up events", [1, 5, 9], [], 1, 1000, rules(0, 0, 200, 120, 0), None, 100, 500, 255, "ScaleUpLimit"),
    ("scaleUp with percent policy and previous scale up and down events", [4], [2], 1, 1000, rules(0, 0, 300, 300, 0), None, 6, 24, 16, "ScaleUpLimit"),
    ("scaleDown with default policy and previous events", [], [1, 5, 9], 1, 1000, None, None, 10, 5, 5, "DesiredWithinRange"),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", [], [1, 5, 9], 1, 1000, None, rules(115, 120, 0, 0, 300), 100, 0, 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large pod policy and previous events", [], [1, 5, 9], 5, 1000, None, rules(130, 120, 0, 0, 300), 100, 0, 5, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large percent policy and previous events", [], [1, 5, 9], 5, 1000, None, rules(0, 0, 100, 120, 300), 100, 2, 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation and previous events", [], [1, 5, 9], 1, 1000, None, rules(5, 120, 0, 0, 300), 100, 2, 100, "ScaleDownLimit"),
    ("scaleDown with percent policy limitation and previous events", [], [2, 4, 6], 1, 1000, None, rules(0, 0, 50, 120, 300), 100, 0, 56, "ScaleDownLimit"),
    ("scaleDown with percent policy and previous scale up and down events", [2], [4], 1, 1000, None, rules(0, 0, 50, 180, 0), 10, 1, 6, "ScaleDownLimit"),
    ("scaleDown with previous events preventing further scale down", [], [10, 10, 10], 1, 1000, None, rules(0, 0, 10, 120, 300), 100, 0, 100, "ScaleDownLimit"),
    ("scaleDown with with previous events still allowing more scale down", [], [10, 10, 10], 1, 1000, None, rules(0, 0, 1000, 120, 300), 10, 5, 5, "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for up", [8, 12, 9, 11], [], 1, 1000, rules(1000, 60, 0, 0, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("check that events were not marked 'outdated' for two different policies in the behavior for up", [8, 12, 9, 11], [], 1, 1000, rules(1000, 120, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("check that events were marked 'outdated' for two different policies in the behavior for up", [8, 12, 9, 11], [], 1, 1000, rules(1000, 30, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for down", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 60, 0, 0, 300), 100, 5, 5, "DesiredWithinRange"),
    ("check that events were not marked 'outdated' for two different policies in the behavior for down", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 120, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
    ("check that events were marked 'outdated' for two different policies in the behavior for down", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 30, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
]  # fmt: skip


@pytest.mark.parametrize(
    (
        "up_events",
        "down_events",
        "low",
        "high",
        "up",
        "down",
        "current",
        "desired",
        "replicas",
        "condition",
    ),
    [pytest.param(*case[1:], id=case[0]) for case in SCALING_WITH_RULES],
)
def test_scaling_with_rules(
    up_events: list[int], down_events: list[int], low: int, high: int,
    up: ScalingRules | None, down: ScalingRules | None,
    current: int, desired: int, replicas: int, condition: str,
) -> None:  # fmt: skip
    events = (spread(up_events, 120) if up_events else []) + (
        spread(down_events, 120, sign=-1) if down_events else []
    )
    got = rate_limited(
        NOW, current, desired, min_replicas=low, max_replicas=high,
        up=up or DEFAULT_UP, down=down or DEFAULT_DOWN, events=events,
    )  # fmt: skip
    assert got == (replicas, condition)


def test_calculate_scale_up_and_down_limit_with_select_min() -> None:
    # upstream TestCalculateScaleUpLimitWithScalingRules / ...DownLimitWithBehaviors:
    # 2 pods or 50 % per 60 s, select Min: from 1 up to 2; from 5 down to 3
    two_or_half = ScalingRules(
        300, (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60)), "Min"
    )
    for current, desired, limited in ((1, 100, (2, "ScaleUpLimit")), (5, 1, (3, "ScaleDownLimit"))):
        got = rate_limited(
            NOW, current, desired, min_replicas=1, max_replicas=100,
            up=two_or_half, down=two_or_half, events=[],
        )  # fmt: skip
        assert got == limited


# (name, recommendations as (minutes ago, replicas), current, desired, expected,
#  scale-up window s, scale-down window s); upstream's unset windows are 0.
NORMALIZE_WITH_BEHAVIOR = [
    ("empty recommendations for scaling down", [], 100, 5, 5, 0, 0),
    ("simple scale down stabilization", [(2, 4), (1, 5)], 100, 3, 5, 0, 180),
    ("simple scale up stabilization", [(2, 4), (1, 5)], 1, 7, 4, 300, 0),
    ("no scale down stabilization", [(2, 1), (1, 2)], 100, 3, 3, 300, 0),
    ("no scale up stabilization", [(2, 4), (1, 5)], 1, 3, 3, 0, 300),
    ("no scale down stabilization, reuse recommendation element", [(10, 10), (9, 9)], 100, 3, 3, 0, 0),
    ("no scale up stabilization, reuse recommendation element", [(10, 10), (9, 9)], 1, 100, 100, 0, 0),
    ("scale down stabilization, reuse one of obsolete recommendation element", [(10, 10), (1, 4), (2, 5), (9, 9)], 100, 3, 5, 0, 180),
    ("scale up stabilization, reuse one of obsolete recommendation element", [(100, 10), (1, 6), (2, 5), (3, 9)], 1, 100, 5, 300, 0),
    ("scale up and down stabilization, do not scale up when prenormalized rec goes down", [(100, 2), (3, 3)], 2, 1, 2, 300, 300),
    ("scale up and down stabilization, do not scale down when prenormalized rec goes up", [(100, 2), (3, 1)], 2, 3, 2, 300, 300),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "current", "desired", "expected", "up_s", "down_s"),
    [pytest.param(*case[1:], id=case[0]) for case in NORMALIZE_WITH_BEHAVIOR],
)
def test_normalize_desired_replicas_with_behavior(
    history: list[tuple[int, int]],
    current: int,
    desired: int,
    expected: int,
    up_s: int,
    down_s: int,
) -> None:
    recommendations = [(NOW - 60 * minutes, replicas) for minutes, replicas in history]
    up, down = ScalingRules(up_s, DEFAULT_UP.policies), ScalingRules(down_s, DEFAULT_DOWN.policies)
    assert stabilised(recommendations, NOW, current, desired, up, down) == expected


def cpu(
    levels: list[int], target_pct: int, *, requests: list[int] | None = None,
    missing: int = 0, unready: int = 0,
) -> MetricReading:  # fmt: skip
    """Ready pods' usage (millicores) over their requests (1 CPU each unless given)."""
    requests = requests or [1000] * len(levels)
    return MetricReading(
        "cpu", sum(levels) / sum(requests), target_pct / 100, missing, unready, "Utilization"
    )


def qps(levels: list[int], target: int) -> MetricReading:
    """A Pods metric in milli-units, averaged as the metrics client does (integer mean)."""
    return MetricReading("qps", sum(levels) // len(levels), target)


# ComputedToleranceAlgImplementation: 10 pods using 150m, requests spread around 300m,
# target just past (and then just inside) the tolerance: upstream's own arithmetic.
_REQUESTS = [400, 200, 310, 290, 302, 298, 301, 299, 300, 300]
_PAST = int((1 / (2 * (1 - 0.1)) + 0.01) * 100)
_INSIDE = int((1 / (2 * (1 - 0.1)) + 0.004) * 100)
_USED = 1500 / (3000 * (1 / (2 * (1 - 0.1)) + 0.01))

# (name, current, ready pods with a sample, reading, expected). Upstream's failed,
# deleted and pending-but-counted pods are not passed; for Pods metrics upstream sets
# no pod aside for readiness, so every pod with a sample is ready.
REPLICA_CALC = [
    ("TestReplicaCalcScaleUp", 3, 3, cpu([300, 500, 700], 30), 5),
    ("TestReplicaCalcScaleUpUnreadyLessScale", 3, 2, cpu([500, 700], 30, unready=1), 4),
    ("TestReplicaCalcScaleUpHotCpuLessScale", 3, 2, cpu([500, 700], 30, unready=1), 4),
    ("TestReplicaCalcScaleUpUnreadyNoScale", 3, 1, cpu([400], 30, unready=2), 3),
    ("TestReplicaCalcScaleHotCpuNoScale", 3, 1, cpu([400], 30, unready=2), 3),
    ("TestReplicaCalcScaleUpIgnoresFailedPods", 2, 2, cpu([500, 700], 30), 4),
    ("TestReplicaCalcScaleUpIgnoresDeletionPods", 2, 2, cpu([500, 700], 30), 4),
    ("TestReplicaCalcScaleUpCM", 3, 3, qps([20000, 10000, 30000], 15000), 4),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", 3, 3, qps([50000, 10000, 30000], 15000), 6),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", 3, 3, qps([50000, 15000, 30000], 15000), 7),
    ("TestReplicaCalcScaleUpCMExternal", 1, 1, qps([8600], 4400), 2),
    ("TestReplicaCalcScaleUpCMExternalNoLabels", 1, 1, qps([8600], 4400), 2),
    ("TestReplicaCalcScaleDown", 5, 5, cpu([100, 300, 500, 250, 250], 50), 3),
    ("TestReplicaCalcScaleDownCM", 5, 5, qps([12000] * 5, 20000), 3),
    ("TestReplicaCalcScaleDownIncludeUnreadyPods", 5, 3, cpu([100, 300, 500], 50, unready=2), 2),
    ("TestReplicaCalcScaleDownExcludeUnscheduledPods", 5, 1, cpu([100], 50, unready=4), 1),
    ("TestReplicaCalcScaleDownIgnoreHotCpuPods", 5, 3, cpu([100, 300, 500], 50, unready=2), 2),
    ("TestReplicaCalcScaleDownIgnoresFailedPods", 5, 5, cpu([100, 300, 500, 250, 250], 50), 3),
    ("TestReplicaCalcScaleDownIgnoresDeletionPods", 5, 5, cpu([100, 300, 500, 250, 250], 50), 3),
    ("TestReplicaCalcTolerance", 3, 3, cpu([1010, 1030, 1020], 100, requests=[900, 1000, 1100]), 3),
    ("TestReplicaCalcToleranceCM", 3, 3, qps([20000, 21000, 21000], 20000), 3),
    ("TestReplicaCalcSuperfluousMetrics", 4, 4, cpu([4000, 9500, 3000, 7000], 100), 24),
    ("TestReplicaCalcMissingMetrics", 4, 2, cpu([400, 95], 100, missing=2), 3),
    ("TestReplicaCalcMissingMetricsNoChangeEq", 2, 1, cpu([1000], 100, missing=1), 2),
    ("TestReplicaCalcMissingMetricsNoChangeGt", 2, 1, cpu([1900], 100, missing=1), 2),
    ("TestReplicaCalcMissingMetricsNoChangeLt", 2, 1, cpu([600], 100, missing=1), 2),
    ("TestReplicaCalcMissingMetricsUnreadyChange", 3, 1, cpu([450], 50, missing=1, unready=1), 3),
    ("TestReplicaCalcMissingMetricsHotCpuNoChange", 3, 1, cpu([450], 50, missing=1, unready=1), 3),
    ("TestReplicaCalcMissingMetricsUnreadyScaleUp", 3, 1, cpu([2000], 50, missing=1, unready=1), 4),
    ("TestReplicaCalcMissingMetricsHotCpuScaleUp", 3, 1, cpu([2000], 50, missing=1, unready=1), 4),
    ("TestReplicaCalcMissingMetricsUnreadyScaleDown", 4, 2, cpu([100, 100], 50, missing=1, unready=1), 3),
    ("TestReplicaCalcDuringRollingUpdateWithMaxSurge", 2, 2, cpu([100, 100], 50, missing=1), 2),
    ("TestReplicaCalcComputedToleranceAlgImplementation", 10, 10, cpu([150] * 10, _PAST, requests=_REQUESTS), math.ceil(_USED * 10)),
    ("TestReplicaCalcComputedToleranceAlgImplementation (within tolerance)", 10, 10, cpu([150] * 10, _INSIDE, requests=_REQUESTS), 10),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "ready", "reading", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in REPLICA_CALC],
)
def test_replica_calc(current: int, ready: int, reading: MetricReading, expected: int) -> None:
    assert Hpa(1, 1000).recommend(current, ready, [reading]) == expected


def test_missing_cpu_pods_on_a_scale_down_count_at_the_target_above_100_percent() -> None:
    # 6 ready at 30 % against 200 %, 2 missing: at 200 % of their request the average
    # is 72 %, ratio 0.36, ceil(2.88) = 3; at a flat 100 % it would be 47 % and 2
    assert Hpa(1, 100).recommend(8, 6, [cpu([300] * 6, 200, missing=2)]) == 3


def test_a_target_at_zero_replicas_is_left_alone() -> None:
    hpa = Hpa(1, 10)
    assert hpa.step(0, 0, 0, [cpu([900], 50)]) == (0, "scaling disabled: the target has 0 replicas")


def test_scale_to_zero_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidValue, match="Object or External metric"):
        Hpa(0, 10)


def test_counts_outside_the_bounds_go_straight_to_them() -> None:
    assert Hpa(2, 5).step(0, 9, 9, [cpu([500] * 9, 50)])[0] == 5
    assert Hpa(4, 10).step(0, 1, 1, [cpu([100], 50)])[0] == 4


def test_the_first_sync_counts_the_current_size_as_a_recommendation() -> None:
    # upstream recordInitialRecommendation: a fresh controller does not scale a
    # deployment down before one scale-down window has passed
    hpa = Hpa(1, 100)
    assert hpa.step(0, 10, 10, [cpu([100] * 10, 50)])[0] == 10
    assert hpa.step(301, 10, 10, [cpu([100] * 10, 50)])[0] == 2
