"""Personal data and secrets kept out of logs, at the handler: whatever a library,
a traceback or a careless `log.warning("%s", body)` writes goes through it.

A sanitiser is a chain of processors, each a plain `str -> str` function (structlog's
shape: small, ordered, easy to extend); `LogSanitizer` is a `logging.Filter` that runs
the chain over a record's formatted message and its formatted exception and stack.
Records of the loggers in `keep_args` (uvicorn's access log, whose formatter unpacks
the arguments) keep their arguments, each cleaned on its own.
The default chain replaces email addresses, phone numbers, API keys and bearer tokens,
credentials in URLs and `key=value` secrets with a placeholder naming what was there.

`install(logger)` puts it on every handler of a logger (the root by default);
`sanitized_log_config(config)` adds it to a `logging.config.dictConfig` mapping, for
servers that configure logging in each worker (uvicorn).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_PROCESSORS",
    "LogSanitizer",
    "Processor",
    "install",
    "redact_credentials",
    "redact_emails",
    "redact_phones",
    "redact_tokens",
    "sanitized_log_config",
]

Processor = Callable[[str], str]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# A run of digits with the separators phone numbers are written with; only runs of
# 9–15 digits count (dates, times, ids and sizes are shorter or unseparated).
_PHONE = re.compile(r"(?<![\w.:/])\+?\(?\d[\d \t().-]{6,22}\d(?![\w.:/])")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(authorization|bearer|x-api-key|api[-_]?key|token|secret|password|passwd)"
    r"(\W{1,3})(?:bearer\s+)?[^\s'\",;&]+"
)
# Opaque credentials: API keys with a prefix (ours `wsk_…`, and the common `sk_…`,
# `ghp_…` shapes), and long runs mixing letters and digits.
_TOKEN = re.compile(
    r"\b(?:wsk|sk|pk|rk|ghp|gho|xox[abp])_[A-Za-z0-9_-]{8,}"
    r"|\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}\b"
)


def redact_emails(text: str) -> str:
    return _EMAIL.sub("<email>", text)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "<phone>" if 9 <= digits <= 15 else match.group()


def redact_phones(text: str) -> str:
    return _PHONE.sub(_phone, text)


def redact_credentials(text: str) -> str:
    """`user:password@` in URLs and `password=…`, `token: …`, `Authorization: …`."""
    text = _URL_CREDENTIALS.sub("<credentials>@", text)
    return _SECRET_ASSIGNMENT.sub(r"\1\2<secret>", text)


def redact_tokens(text: str) -> str:
    return _TOKEN.sub("<token>", text)


DEFAULT_PROCESSORS: tuple[Processor, ...] = (
    redact_credentials,
    redact_tokens,
    redact_emails,
    redact_phones,
)


class LogSanitizer(logging.Filter):
    """Run `processors` over everything a record will print; never drops a record."""

    def __init__(
        self,
        processors: Iterable[Processor] = DEFAULT_PROCESSORS,
        keep_args: Iterable[str] = ("uvicorn.access",),
    ) -> None:
        super().__init__()
        self.processors = tuple(processors)
        self.keep_args = frozenset(keep_args)

    def clean(self, text: str) -> str:
        for process in self.processors:
            text = process(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_wsp_sanitized", False):  # one record, several handlers
            return True
        if not record.args or record.name not in self.keep_args:
            # Formatted first: a secret's name may sit in the template, its value in args.
            record.msg = self.clean(record.getMessage())
            record.args = None
        elif isinstance(record.args, Mapping):
            record.msg = self.clean(str(record.msg))
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        else:
            record.msg = self.clean(str(record.msg))
            record.args = tuple(self._arg(a) for a in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        record._wsp_sanitized = True
        return True

    def _arg(self, value: object) -> object:
        if isinstance(value, int | float | bool) or value is None:
            return value  # %d and %f still format them
        return self.clean(value if isinstance(value, str) else str(value))


def install(logger: logging.Logger | None = None, sanitizer: LogSanitizer | None = None) -> None:
    """Put `sanitizer` (the default chain) on every handler of `logger` (the root):
    a filter on a handler sees records propagated from every logger below it."""
    target = logger or logging.getLogger()
    sanitizer = sanitizer or LogSanitizer()
    for handler in target.handlers:
        if not any(isinstance(f, LogSanitizer) for f in handler.filters):
            handler.addFilter(sanitizer)


def sanitized_log_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (a dictConfig mapping) with the default sanitiser on every handler."""
    result = {**config, "filters": {**config.get("filters", {})}}
    result["filters"]["wsp_sanitize"] = {"()": LogSanitizer}
    handlers = {}
    for name, handler in config.get("handlers", {}).items():
        handlers[name] = {**handler, "filters": [*handler.get("filters", []), "wsp_sanitize"]}
    result["handlers"] = handlers
    if "root" not in result and handlers:  # else app loggers reach logging's lastResort,
        result["root"] = {"handlers": [next(iter(handlers))], "level": "WARNING"}  # unfiltered
    return result
