"""The streaming detector on a real NATS JetStream subject (the server at 127.0.0.1:4222)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from datetime import UTC, datetime

import pytest

from quietline.traffic.nats_source import watch_nats
from quietline.traffic.streaming import BombingAlert, BombingDetector, StreamStats

URL = "nats://127.0.0.1:4222"


def _reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _reachable(), reason="no NATS server at 127.0.0.1:4222")


async def _publish(subject: str, stream: str, payloads: list[bytes]) -> None:
    import nats

    nc = await nats.connect(URL)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    for p in payloads:
        await js.publish(subject, p)
    await nc.drain()


async def _delete(stream: str) -> None:
    import nats

    nc = await nats.connect(URL)
    await nc.jetstream().delete_stream(stream)
    await nc.drain()


@pytest.mark.slow
def test_bombing_alert_from_a_jetstream_subject() -> None:
    tag = uuid.uuid4().hex[:8]
    subject, stream = f"quietline.test.cdr.{tag}", f"QL_TEST_{tag}"
    t0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()
    calls = [
        {
            "caller": "+8617000000001",
            "callee": "13800138000",
            "start_time": t0 + 2.5 * i,
            "ring_seconds": 2,
            "duration_seconds": 0,
        }
        for i in range(30)
    ]
    payloads = [json.dumps(c).encode() for c in calls] + [b"not json", b'{"caller": "+8613800138000"}']
    asyncio.run(_publish(subject, stream, payloads))
    alerts: list[BombingAlert] = []
    stats = StreamStats()
    try:
        watch_nats(
            subject,
            BombingDetector(),
            stats,
            alerts.append,
            url=URL,
            stream=stream,
            durable=f"d{tag}",
            idle_exit_seconds=2,
        )
    finally:
        asyncio.run(_delete(stream))
    assert len(alerts) == 1
    assert alerts[0].caller == "+8617000000001"
    assert alerts[0].latency_seconds <= 60
    assert stats.rows == 32
    assert stats.rejected == {"not_a_json_object": 1, "missing_field": 1}
