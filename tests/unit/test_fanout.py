"""Fan-out under one deadline: partial results with a status per vendor, one hedge."""

from __future__ import annotations

import asyncio

import pytest

from wedsync_perf.scaling.fanout import fan_out


async def test_partial_results_with_a_status_per_vendor() -> None:
    never = asyncio.Event()

    async def florist() -> str:
        return "roses at 11:00"

    async def caterer() -> str:
        raise ConnectionError("http://10.0.0.7:8080 refused")

    async def band() -> str:
        await never.wait()  # a vendor system that never answers
        return "never"

    result = await fan_out({"florist": florist, "caterer": caterer, "band": band}, deadline_s=0.05)
    assert result.values() == {"florist": "roses at 11:00"}
    assert result.outcomes["caterer"].status == "error"
    assert result.outcomes["caterer"].error == "ConnectionError"  # type only: no address
    assert result.outcomes["band"].status == "timeout"
    assert not result.complete


async def test_a_slow_call_is_hedged_once_and_the_first_answer_wins() -> None:
    calls = 0
    first_blocked = asyncio.Event()

    async def photographer() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await first_blocked.wait()  # the first attempt is stuck
        return f"attempt {calls}"

    result = await fan_out({"photographer": photographer}, deadline_s=5, hedge_after_s=0.01)
    outcome = result.outcomes["photographer"]
    assert outcome.status == "ok"
    assert outcome.value == "attempt 2"
    assert outcome.hedged
    assert calls == 2  # hedged once, not again


async def test_a_bad_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="deadline_s"):
        await fan_out({}, deadline_s=0)
