from __future__ import annotations

import re

import pytest

from wedsync_perf.errors import ConfigError
from wedsync_perf.keys import RedisKeys
from wedsync_perf.settings import PerfSettings, load_settings

KEYS = RedisKeys("t9x")
ENTRY = KEYS.cache_entry("Tn0", "d1")
# Every key the builder makes, and the hash tag it must carry.
NAMES = {
    "cache_entry": (ENTRY, "Tn0"),
    "cache_tag": (KEYS.cache_tag("Tn0", "d2"), "Tn0"),
    "cache_lock": (KEYS.cache_lock(ENTRY), "Tn0"),
    "fleet_window": (KEYS.fleet_window("blue", 1_800_000_000.7), "blue"),
    "fleet_hourly": (KEYS.fleet_hourly("blue", "20270115"), "blue"),
    "alert_lease": (KEYS.alert_lease("blue"), "blue"),
    "write_position": (KEYS.write_position("7301", 42), "7301:42"),
}


def _hash_tag(name: str) -> str | None:
    """What Redis Cluster hashes: the first non-empty `{…}`, else the whole name."""
    match = re.search(r"\{([^}]*)\}", name)
    return match.group(1) if match and match.group(1) else None


def test_every_method_is_covered() -> None:
    public = {
        n
        for n in dir(RedisKeys)
        if not n.startswith("_") and callable(getattr(RedisKeys, n)) and n != "cache_scope"
    }
    assert public == set(NAMES) | {"invalidation_channel", "rate_limit_prefix"}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_keys_start_with_the_prefix_and_carry_one_hash_tag(kind: str) -> None:
    name, tag = NAMES[kind]
    assert name.startswith("t9x:")
    assert _hash_tag(name) == tag
    assert name.count("{") == name.count("}") == 1


def test_a_tenants_entry_tags_and_lock_share_a_slot_other_tenants_do_not() -> None:
    slots = {_hash_tag(NAMES[k][0]) for k in ("cache_entry", "cache_tag", "cache_lock")}
    assert slots == {"Tn0"}
    assert _hash_tag(KEYS.cache_entry("Other", "d1")) != "Tn0"
    assert KEYS.cache_entry("Tn0", "d1").startswith(KEYS.cache_scope("Tn0") + ":")


def test_channel_and_rate_limit_prefix_are_prefixed_and_leave_tags_to_others() -> None:
    assert KEYS.invalidation_channel() == "t9x:c:bus"
    # No brace of ours: the `limits` library's own `{…}` must be the first in its keys.
    assert KEYS.rate_limit_prefix() == "t9x:rl"


def test_default_prefix_is_the_settings_default() -> None:
    assert RedisKeys().prefix == PerfSettings.model_fields["redis_prefix"].default == "wsp"


@pytest.mark.parametrize("bad", ["", "t9x:", "a b", "{t}", "x}", "é", "a" * 33])
def test_bad_prefix_is_rejected_with_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="Redis key prefix must be 1-32 of") as caught:
        RedisKeys(bad)
    assert repr(bad) in str(caught.value)


def test_bad_prefix_in_the_environment_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_PERF_REDIS_PREFIX", "{oops}")
    with pytest.raises(ConfigError) as caught:
        load_settings(PerfSettings)
    assert caught.value.variable == "WEDSYNC_PERF_REDIS_PREFIX"


@pytest.mark.parametrize("bad", ["", "a{b", "a}b"])
def test_hash_tag_content_must_not_break_the_tag(bad: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        KEYS.fleet_window(bad, 0)


def test_a_lock_is_only_made_for_an_entry_of_this_prefix() -> None:
    with pytest.raises(ValueError, match="not a cache entry"):
        KEYS.cache_lock(RedisKeys("other").cache_entry("Tn0", "d1"))
