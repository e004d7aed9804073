"""Logging to stderr in a form journald keeps well, or as JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

# syslog priorities, which journald reads from a "<N>" prefix on each line
PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class JournalFormatter(logging.Formatter):
    """`<6>message` under journald (it adds time and unit itself); `LEVEL message` on a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if os.environ.get("JOURNAL_STREAM"):
            return f"<{PRIORITY.get(record.levelno, 6)}>{message}"
        return f"{record.levelname:<7} {message}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else JournalFormatter("%(message)s"))
    own = logging.getLogger("renewd")
    own.handlers[:] = [handler]
    own.setLevel(logging.INFO)
    own.propagate = False
    # What libraries log (asyncio, aiosmtplib) comes out the same way, so JSON stays JSON.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
