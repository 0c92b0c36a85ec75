"""Phone numbers never reach the server's logs in clear.

The access log writes every request line, and quietline's request lines carry numbers: ``GET
/v1/screen?caller=…&callee=…`` for every screened call, ``/v1/numbers/{number}/reputation`` for every
caller-ID look-up. A number is personal information (个人信息保护法 第四条; DESIGN.md "Privacy"), and a
log is copied, shipped and kept far more widely than the database, so the request line is
de-identified before it is formatted: each run of seven or more digits (any mobile, fixed-line or
international number, with or without ``+``/``%2B``) keeps its first three and last four digits and the
rest become ``*`` — the display masking of GB/T 35273-2020 (个人信息安全规范) §3.14 and the familiar
``138****8000``. Shorter runs (ids, service numbers such as 12321, years) stay as they are.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Seven or more digits in a row: every subscriber number, in any spelling the parser accepts.
_NUMBER = re.compile(r"\d{7,}")


def mask_numbers(text: str) -> str:
    """``/v1/screen?caller=13800138000`` → ``/v1/screen?caller=138****8000``."""
    return _NUMBER.sub(lambda m: m[0][:3] + "*" * (len(m[0]) - 7) + m[0][-4:], text)


def mask_record(record: logging.LogRecord) -> None:
    """Mask numbers in a record's message and its string arguments (the access log passes the request
    path as an argument; quietline's own messages pass numbers as arguments too)."""
    if isinstance(record.msg, str):
        record.msg = mask_numbers(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(mask_numbers(a) if isinstance(a, str) else a for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: mask_numbers(v) if isinstance(v, str) else v for k, v in record.args.items()}


#: Loggers whose records are masked: the server's (request lines) and quietline's own.
MASKED_LOGGERS = frozenset({"uvicorn", "quietline"})


def install() -> None:
    """Mask numbers in every record of the ``MASKED_LOGGERS`` trees as it is created (idempotent).

    A record factory rather than a filter: a logger's filters see only records logged on that very
    logger, not those of its children (``quietline.reactions.relay`` …), and handlers belong to whoever
    configures logging (uvicorn, a test, an embedding application)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_numbers", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.partition(".")[0] in MASKED_LOGGERS:
            mask_record(record)
        return record

    factory.masks_numbers = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
