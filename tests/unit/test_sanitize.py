"""The log sanitiser: emails, phones, keys and tokens leave no trace in what a handler
writes — in messages, arguments and tracebacks — and records keep their shape."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from wedsync_perf.sanitize import LogSanitizer, install, sanitized_log_config

SECRETS = [
    "ana.lopez+wedding@example.co.uk",
    "+44 20 7946 0958",
    "(020) 7946-0958",
    "wsk_demo_0123456789abcdef0123456789abcdef",
    "eyJhbGciOiJIUzI1NiJ9eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    "hunter2secret",
]
KEPT = ["2026-12-01 15:56:34", "took 1234 ms", "127.0.0.1:8000", "wedding 42", "status 503",
        "GET /weddings/7/timeline", "a6d5710"]  # fmt: skip


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger(f"test_sanitize.{id(out)}")
    logger.addHandler(handler)
    logger.propagate = False
    install(logger)
    yield logger, out
    logger.removeHandler(handler)


def test_messages_and_arguments_are_cleaned(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    logger.warning("contact %s or %s", SECRETS[0], SECRETS[1])
    logger.warning("phone %(phone)s key %(key)s", {"phone": SECRETS[2], "key": SECRETS[3]})
    logger.warning("Authorization: Bearer %s password=%s", SECRETS[4], SECRETS[5])
    logger.warning("url postgresql://app:%s@db/x", SECRETS[5])
    text = out.getvalue()
    assert not [s for s in SECRETS if s in text], text
    assert "<email>" in text
    assert "<phone>" in text
    assert "<secret>" in text


def test_tracebacks_are_cleaned(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    try:
        raise ValueError(f"bad input {SECRETS[0]} {SECRETS[1]} {SECRETS[3]}")
    except ValueError:
        logger.exception("request failed")
    text = out.getvalue()
    assert "Traceback" in text
    assert "ValueError" in text
    assert not [s for s in SECRETS if s in text], text


def test_ordinary_text_is_kept(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    for line in KEPT:
        logger.warning("%s", line)
    logger.warning("%d requests, %.1f%%", 12, 99.5)
    text = out.getvalue()
    assert all(line in text for line in KEPT), text
    assert "12 requests, 99.5%" in text


def test_the_dict_config_puts_it_on_every_handler_and_the_root() -> None:
    config = sanitized_log_config({
        "version": 1,
        "handlers": {"a": {"class": "logging.StreamHandler"}, "b": {"class": "logging.NullHandler"}},
        "loggers": {"x": {"handlers": ["a"]}},
    })  # fmt: skip
    assert all("wsp_sanitize" in h["filters"] for h in config["handlers"].values())
    assert config["root"]["handlers"] == ["a"]
    assert config["filters"]["wsp_sanitize"]["()"] is LogSanitizer


def test_access_log_records_keep_their_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                               f"/x?email={SECRETS[0]}", "1.1", 200), None)  # fmt: skip
    LogSanitizer().filter(record)
    assert isinstance(record.args, tuple)
    assert len(record.args) == 5
    assert record.args[4] == 200
    assert SECRETS[0] not in record.getMessage()
