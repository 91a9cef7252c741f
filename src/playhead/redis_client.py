"""Redis clients as playhead uses them (the queue and the board): fail fast, say where.

No socket timeout: with one, redis-py sends through ``asyncio.wait_for``, which on Python 3.11
swallows a cancellation that lands as the send completes (the task then goes on as if never
cancelled, and a task being closed may never end). Callers bound every operation with
``asyncio.timeout`` instead. A pooled connection that a Redis restart closed is retried once,
at once; nothing else is retried here.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def client(url: str, connect_timeout_s: float, single: bool = False) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,  # BullMQ's scripts and its Python side compare strings
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=None,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        single_connection_client=single,
    )


def shown(url: str) -> str:
    """The URL without its credentials, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
