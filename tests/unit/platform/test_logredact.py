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


def test_the_access_log_record_is_masked_before_it_is_formatted(caplog: pytest.LogCaptureFixture) -> None:
    logredact.install()
    logredact.install()  # idempotent
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, logredact.MaskNumbers) for f in access.filters) == 1
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # uvicorn's own call: '%s - "%s %s HTTP/%s" %d' with the path as an argument.
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/screen?caller=13800138000", "1.1", 200
        )
    assert caplog.messages == ['127.0.0.1:5000 - "GET /v1/screen?caller=138****8000 HTTP/1.1" 200']
    assert "13800138000" not in caplog.text
