"""Call records from a NATS JetStream subject, fed to the streaming bombing detector.

In a multi-node deployment switches (or a CDR collector) publish each call attempt as one JSON
object with the call-record fields (DESIGN.md "Architecture": NATS JetStream carries events between
processes). A durable pull consumer reads them, so a restarted detector continues where it left
off, and each message is acknowledged once the detector has seen it. Messages that are not JSON
objects, or lack a required field, are counted (``stats``) and acknowledged, never retried forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from quietline.platform.errors import InvalidInput
from quietline.traffic.streaming import BombingAlert, BombingDetector, StreamStats, event_from_row

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "QUIETLINE_CDR"
DEFAULT_DURABLE = "quietline-bombing"


def _row(data: bytes) -> dict[str, str | None] | None:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(k): None if v is None else str(v) for k, v in value.items()}


def watch_nats(
    subject: str,
    detector: BombingDetector,
    stats: StreamStats,
    on_alert: Callable[[BombingAlert], None],
    *,
    url: str = DEFAULT_URL,
    stream: str = DEFAULT_STREAM,
    durable: str = DEFAULT_DURABLE,
    idle_exit_seconds: float | None = None,
    batch: int = 500,
) -> None:
    """Consume ``subject`` until interrupted (or idle for ``idle_exit_seconds``)."""
    asyncio.run(_watch(subject, detector, stats, on_alert, url, stream, durable, idle_exit_seconds, batch))


async def _watch(
    subject: str,
    detector: BombingDetector,
    stats: StreamStats,
    on_alert: Callable[[BombingAlert], None],
    url: str,
    stream: str,
    durable: str,
    idle_exit_seconds: float | None,
    batch: int,
) -> None:
    import nats
    from nats.errors import NoServersError
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import NotFoundError

    try:
        nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=3, allow_reconnect=True)
    except (NoServersError, OSError) as exc:
        raise InvalidInput(f"cannot reach NATS at {url}: {exc}", field="nats_url") from None
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[subject])
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
        loop = asyncio.get_running_loop()
        last_message = loop.time()
        while True:
            try:
                msgs: list[Any] = await sub.fetch(batch, timeout=1)
            except NatsTimeout:
                if idle_exit_seconds is not None and loop.time() - last_message >= idle_exit_seconds:
                    return
                continue
            last_message = loop.time()
            for msg in msgs:
                row = _row(msg.data)
                if row is None:
                    stats.rows += 1
                    stats.reject("not_a_json_object")
                else:
                    event = event_from_row(row, stats)
                    if event is not None:
                        alert = detector.observe(event)
                        if alert is not None:
                            on_alert(alert)
                await msg.ack()
    finally:
        await nc.drain()
