"""``/readyz`` on a real API replica: a ``playhead serve --workers 0`` process on a real
redis-server and a real S3 server (SeaweedFS), as deploy/ runs it. Ready while the queue and
the store answer; 503 with the cause while either is down, and again from the moment the
process gets SIGTERM, while it drains (``--drain``) before it stops. ``/healthz`` is unchanged:
it still answers during the drain."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from waiting import eventually

from playhead.cluster.process import Service, free_port
from playhead.cluster.redis_server import redis_url
from playhead.cluster.s3_server import S3Server

DRAIN_S = 3.0


@pytest.fixture
def replica(services: tuple[Service, S3Server], tmp_path: Path) -> Iterator[Service]:
    redis, s3 = services
    port = free_port()
    argv = [
        sys.executable, "-m", "playhead.cli", "serve",
        "--data", str(tmp_path / "data"),
        "--port", str(port),
        "--workers", "0",
        "--no-sample",
        "--redis", redis_url(redis),
        "--store", "s3://playhead/run",
        "--drain", str(DRAIN_S),
    ]  # fmt: skip
    service = Service(
        "replica",
        argv,
        port,
        tmp_path / "replica.log",
        env=s3.client_env(),
        ready=lambda: _status(port, "/healthz") == 200,
        start_timeout_s=120,
    )
    with service:
        yield service


def _get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def _status(port: int, path: str) -> int | None:
    try:
        return _get(port, path).status_code
    except httpx.TransportError:
        return None


def _error(port: int) -> str | None:
    try:
        r = _get(port, "/readyz")
    except httpx.TransportError:
        return "unreachable"
    if r.status_code != 503:
        return None
    code: str = r.json()["error"]["code"]
    return code


def test_readyz_is_503_while_the_store_or_redis_is_down(
    services: tuple[Service, S3Server], replica: Service
) -> None:
    redis, s3 = services
    port = replica.port
    r = _get(port, "/readyz")
    assert r.status_code == 200 and r.json()["ok"] is True
    s3.stop()
    try:
        eventually(lambda: _error(port) == "store_unavailable", "/readyz: store_unavailable")
        assert _status(port, "/healthz") == 200  # liveness does not ask the store
    finally:
        s3.start()
    eventually(lambda: _status(port, "/readyz") == 200, "/readyz ready with the store back")
    redis.stop()
    try:
        eventually(
            lambda: _error(port) in ("queue_unavailable", "board_unavailable"),
            "/readyz: Redis unavailable",
        )
    finally:
        redis.start()
    eventually(lambda: _status(port, "/readyz") == 200, "/readyz ready with Redis back", 60)


def test_sigterm_makes_readyz_503_while_the_replica_drains_then_it_stops(
    replica: Service,
) -> None:
    port = replica.port
    assert _status(port, "/readyz") == 200
    replica.signal(signal.SIGTERM)
    signalled = time.monotonic()
    eventually(lambda: _error(port) == "draining", "/readyz: draining", timeout=5)
    body = _get(port, "/readyz").json()
    assert body["error"]["message"] == "this replica is shutting down"
    assert _status(port, "/healthz") == 200  # alive, still serving what reaches it
    assert replica.alive()
    # it stops after the drain, not before
    eventually(lambda: not replica.alive(), "the replica to exit", timeout=DRAIN_S + 30)
    assert time.monotonic() - signalled >= DRAIN_S - 0.5
    assert _status(port, "/healthz") is None
    # uvicorn ends a graceful shutdown by re-raising the signal it got
    assert replica.wait(5) in (0, -signal.SIGTERM)
