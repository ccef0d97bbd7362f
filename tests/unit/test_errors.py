"""The library's errors: rooted in `WedsyncPerfError`, still ValueErrors where the
builtin was raised before, naming the field at fault and what is accepted."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from wedsync_perf.caching import DataPolicy, Keyring
from wedsync_perf.caching.envelope import parse
from wedsync_perf.calendar import WeddingCalendar
from wedsync_perf.errors import (
    BackendUnavailable,
    ConfigError,
    CorruptData,
    InvalidValue,
    SealError,
    WedsyncPerfError,
)
from wedsync_perf.monitoring.recorder import Recorder
from wedsync_perf.monitoring.sketch import LatencySketch
from wedsync_perf.monitoring.slo import SloConfig, SloTracker
from wedsync_perf.scaling.balancer import BalancedTransport, CircuitOpen
from wedsync_perf.scaling.capacity import fit_usl
from wedsync_perf.scaling.queueing import erlang_c


def test_invalid_value_says_what_was_given_and_what_is_accepted() -> None:
    error = InvalidValue("rps", -3, "a positive request rate")
    assert str(error) == "rps: got -3, expected a positive request rate"
    assert (error.field, error.value, error.accepted) == ("rps", -3, "a positive request rate")
    assert isinstance(error, WedsyncPerfError)
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes: process pools
    assert str(again) == str(error)
    assert again.field == "rps"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Keyring([b"short"]), "len(keys[0])"),
        (lambda: DataPolicy(0), "ttl_s"),
        (lambda: LatencySketch().quantile(1.5), "q"),
        (lambda: BalancedTransport([]), "backends"),
        (lambda: erlang_c(0, 1.0), "c"),
        (lambda: WeddingCalendar(season_start_month=13), "season_start_month"),
        (lambda: fit_usl([1, 2], [10, 20]), "len(concurrency)"),
        (lambda: Recorder(window_s=10, retention_s=5), "retention_s"),
    ],
)
def test_public_functions_raise_invalid_value_naming_the_field(
    call: Callable[[], Any], field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        call()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: got ")


@pytest.mark.parametrize(
    "call",
    [
        lambda: LatencySketch.from_bytes(b""),
        lambda: parse(b"no header"),
        lambda: Keyring([Keyring.generate()]).open(b"\x00" * 40, b"k"),
    ],
)
def test_unreadable_bytes_raise_corrupt_data(call: Callable[[], Any]) -> None:
    with pytest.raises(CorruptData) as caught:
        call()
    assert isinstance(caught.value, ValueError)


def test_seal_error_is_corrupt_data() -> None:
    assert issubclass(SealError, CorruptData)
    assert issubclass(SealError, WedsyncPerfError)


def test_slo_thresholds_off_the_recorder_edges_name_the_setting() -> None:
    config = SloConfig.model_validate(
        {"objectives": [{"name": "x", "kind": "latency", "objective": 0.99, "threshold_ms": 123}]}
    )
    with pytest.raises(ConfigError) as caught:
        SloTracker(config, (0.1, 0.2), 10.0)
    assert caught.value.variable == "WEDSYNC_PERF_SLO_FILE"
    assert "123" in caught.value.problem


def test_unavailability_errors_are_the_librarys_and_say_503() -> None:
    assert BackendUnavailable.http_status == 503
    assert issubclass(CircuitOpen, WedsyncPerfError)
    assert issubclass(CircuitOpen, httpx.TransportError)  # what httpx callers catch
    assert CircuitOpen.http_status == 503
