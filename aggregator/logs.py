"""Logging for a Beffroi process: every record, ours or a library's, leaves redacted.

httpx logs each request's full URL at INFO, httpcore and redis log connection details at DEBUG,
aiohttp logs tracebacks: none of them knows which strings are secrets. So redaction happens in
the one place every record passes, the root handler's formatter, on the final text (message,
arguments, ``extra`` fields a format may show, exception traceback and stack). Logger-level
filters would not do: they do not see records of child loggers.

The secrets to mask are the configuration's (``remember_secrets``, called at start and on every
reload, so a key added by a SIGHUP reload is masked from then on) plus the secret shapes
:meth:`~aggregator.redact.Redactor.redact_text` recognises without being told.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

import orjson

from aggregator.badrequests import MalformedRequestLog
from aggregator.redact import Redactor

__all__ = [
    "LOG_FORMAT",
    "RedactingFormatter",
    "RedactingJsonFormatter",
    "configure_logging",
    "remember_secrets",
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_redactor = Redactor()


def remember_secrets(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in every log record from now on (those remembered before stay masked:
    a record about the previous configuration may still be on its way)."""
    global _secrets, _redactor
    with _lock:
        merged = _secrets | {s for s in secrets if s}
        if merged != _secrets:
            _secrets, _redactor = merged, Redactor(merged)


def log_redactor() -> Redactor:
    """The redactor log records currently go through."""
    return _redactor


class RedactingFormatter(logging.Formatter):
    """A formatter whose output, traceback included, has every secret masked."""

    def format(self, record: logging.LogRecord) -> str:
        text = log_redactor().redact_text(super().format(record))
        # ``format`` caches the traceback text on the record; never leave a raw copy there
        # for another handler to print.
        if record.exc_text:
            record.exc_text = log_redactor().redact_text(record.exc_text)
        return text


#: The fields of a record a JSON line carries when a log call gives them (``extra=``): which
#: source, what happened to it, and the state it is in now.
JSON_FIELDS = ("source", "event", "state")


class RedactingJsonFormatter(RedactingFormatter):
    """One JSON object per line: time, level, logger, message, the :data:`JSON_FIELDS` a
    record carries, and the traceback; every string redacted like the text format."""

    def format(self, record: logging.LogRecord) -> str:
        redact = log_redactor().redact_text
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in JSON_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = redact(str(value))
        if record.exc_info:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(line).decode()


def configure_logging(level: str | int, log_format: str = "text") -> None:
    """Send every record of the process to stderr through the redacting formatter, as text
    lines or (``log_format="json"``) one JSON object per line."""
    formatter: logging.Formatter = (
        RedactingJsonFormatter() if log_format == "json" else RedactingFormatter(LOG_FORMAT)
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # A logger that does not propagate and has no handler of its own ends in logging's
    # last-resort handler, which would print it unredacted.
    last_resort = logging.StreamHandler()
    last_resort.setLevel(logging.WARNING)
    last_resort.setFormatter(formatter)
    logging.lastResort = last_resort
    # Warnings (a library's ResourceWarning naming a URL) and uncaught exceptions would
    # otherwise be written to stderr directly, around the formatter.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # APScheduler reports every run at INFO; our poller logs the transitions that matter.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    MalformedRequestLog.install()


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("beffroi").critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("beffroi").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
