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


def test_records_are_masked_before_they_are_formatted(caplog: pytest.LogCaptureFixture) -> None:
    logredact.install()
    logredact.install()  # idempotent: one wrapper, not two
    factory = logging.getLogRecordFactory()
    assert getattr(factory, "masks_numbers", False)
    with caplog.at_level(logging.INFO):
        # uvicorn's own call: '%s - "%s %s HTTP/%s" %d' with the path as an argument.
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/screen?caller=13800138000", "1.1", 200
        )
        logging.getLogger("quietline.reactions.relay").info("finding for %s left", "+8613800138000")
        logging.getLogger("quietline").warning("SMS to 13900139000 failed")
        logging.getLogger("elsewhere").warning("row 13800138000")  # not ours: untouched
    assert caplog.messages == [
        '127.0.0.1:5000 - "GET /v1/screen?caller=138****8000 HTTP/1.1" 200',
        "finding for +861******8000 left",
        "SMS to 139****9000 failed",
        "row 13800138000",
    ]
