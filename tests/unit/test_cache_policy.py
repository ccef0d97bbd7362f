from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from wedsync_perf.caching import CachePolicy, DataPolicy
from wedsync_perf.caching.policy import FROZEN_TTL_S
from wedsync_perf.errors import InvalidValue


def policy_at(moment: datetime) -> CachePolicy:
    return CachePolicy(clock=moment.timestamp)


def test_wedding_ttl_follows_the_days_before_the_wedding() -> None:
    wedding = date(2027, 6, 12)  # a Saturday
    base = CachePolicy().of("wedding_timeline").ttl_s
    ttl = {
        "months away": policy_at(datetime(2027, 1, 5, tzinfo=UTC)).ttl_s(
            "wedding_timeline", wedding
        ),
        "weeks away": policy_at(datetime(2027, 5, 1, tzinfo=UTC)).ttl_s(
            "wedding_timeline", wedding
        ),
        "last week": policy_at(datetime(2027, 6, 7, tzinfo=UTC)).ttl_s("wedding_timeline", wedding),
        "last 72 h": policy_at(datetime(2027, 6, 10, tzinfo=UTC)).ttl_s(
            "wedding_timeline", wedding
        ),
        "the day": policy_at(datetime(2027, 6, 12, 14, tzinfo=UTC)).ttl_s(
            "wedding_timeline", wedding
        ),
        "after": policy_at(datetime(2027, 7, 1, tzinfo=UTC)).ttl_s("wedding_timeline", wedding),
    }
    assert ttl["months away"] == base * 2
    assert ttl["weeks away"] == base
    assert ttl["last week"] == base / 2
    assert ttl["last 72 h"] == ttl["the day"] == FROZEN_TTL_S
    assert ttl["after"] == base * 12


def test_planning_data_lives_longer_on_wedding_days() -> None:
    saturday = policy_at(datetime(2027, 6, 12, 10, tzinfo=UTC))
    tuesday = policy_at(datetime(2027, 6, 8, 10, tzinfo=UTC))
    assert saturday.ttl_s("supplier_profile") == 2 * tuesday.ttl_s("supplier_profile")
    assert saturday.ttl_s("venue_availability") == tuesday.ttl_s("venue_availability")


def test_frozen_window() -> None:
    policy = policy_at(datetime(2027, 6, 9, 23, tzinfo=UTC))
    assert policy.frozen(date(2027, 6, 12))
    assert not policy.frozen(date(2027, 6, 20))
    assert policy.longest_ttl_s >= FROZEN_TTL_S


def test_an_unknown_data_class_is_an_error_not_the_default() -> None:
    policy = CachePolicy()
    for typo in ("wedding_vendor", "no-such-class", ""):
        with pytest.raises(InvalidValue) as caught:
            policy.of(typo)
        assert caught.value.field == "data_class"
        assert "wedding_vendors" in caught.value.accepted


def test_data_class_names_and_size_caps_are_validated() -> None:
    for bad in ("Wedding", "two words", "new\nline", "x" * 65):
        with pytest.raises(InvalidValue, match="data class"):
            CachePolicy({"default": DataPolicy(10), bad: DataPolicy(10)})
    with pytest.raises(InvalidValue, match="max_bytes"):
        DataPolicy(10, max_bytes=10)
    assert DataPolicy(10).max_bytes == 2 * 1024 * 1024


def test_every_class_holding_contacts_or_couples_names_is_sealed() -> None:
    policy = CachePolicy()
    for data_class in ("supplier_profile", "wedding", "wedding_vendors"):
        assert policy.of(data_class).sensitive, data_class


def test_policy_table_is_validated() -> None:
    with pytest.raises(ValueError, match="default"):
        CachePolicy({"x": DataPolicy(10)})
    with pytest.raises(ValueError, match="ttl_s"):
        DataPolicy(0)
