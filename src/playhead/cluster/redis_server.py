"""Debian's redis-server on a loopback port, with an append-only file so a kill -9 loses
nothing that was acknowledged."""

from __future__ import annotations

import shutil
from pathlib import Path

from playhead.cluster.process import Service, ServiceError, free_port


def redis_server(data_dir: Path, port: int | None = None) -> Service:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server is not installed: run `make setup` (Debian redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--protected-mode", "yes",
        "--daemonize", "no",
    ]  # fmt: skip
    return Service("redis-server", argv, port, data_dir / "redis.log")


def redis_url(service: Service, db: int = 0) -> str:
    return f"redis://127.0.0.1:{service.port}/{db}"
