"""Request lines in the server's logs never carry a phone number in clear."""

from __future__ import annotations

import logging

import pytest

from quietline.platform import logredact


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            "/v1/screen?caller=13800138000&callee=%2B8613900139000",
            "/v1/screen?caller=138****8000&callee=%2B861******9000",
        ),
        ("/v1/numbers/+8613800138000/reputation", "/v1/numbers/+861******8000/reputation"),
        ("/v1/numbers/01012345678/reputation", "/v1/numbers/010****5678/reputation"),
        ("/v1/complaints/12321?page=2&year=2026", "/v1/complaints/12321?page=2&year=2026"),
        ("/v1/screen?caller=1234567", "/v1/screen?caller=1234567"),
    ],
)
def test_numbers_keep_only_their_first_three_and_last_four_digits(line: str, masked: str) -> None:
    assert logredact.mask_numbers(line) == masked


class Collect(logging.Handler):
    """Formats what reaches it (attached to each logger: uvicorn's own config stops propagation)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_records_are_masked_before_they_are_formatted() -> None:
    logredact.install()
    logredact.install()  # idempotent: one wrapper, not two
    factory = logging.getLogRecordFactory()
    assert getattr(factory, "masks_numbers", False)
    collect = Collect()
    names = ("uvicorn.access", "quietline.reactions.relay", "quietline", "elsewhere")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.addHandler(collect)
        lg.setLevel(logging.INFO)
        lg.disabled = False
    try:
        # uvicorn's own call: '%s - "%s %s HTTP/%s" %d' with the path as an argument.
        loggers[0].info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/screen?caller=13800138000", "1.1", 200
        )
        loggers[1].info("finding for %s left", "+8613800138000")
        loggers[2].warning("SMS to 13900139000 failed")
        loggers[3].warning("row 13800138000")  # not ours: untouched
    finally:
        for lg, (level, disabled) in zip(loggers, saved, strict=True):
            lg.removeHandler(collect)
            lg.setLevel(level)
            lg.disabled = disabled
    # A child's record reaches the parent's handler too: keep each line once, in order.
    assert list(dict.fromkeys(collect.lines)) == [
        '127.0.0.1:5000 - "GET /v1/screen?caller=138****8000 HTTP/1.1" 200',
        "finding for +861******8000 left",
        "SMS to 139****9000 failed",
        "row 13800138000",
    ]
