"""Small asyncio helpers shared by the worker loop and the queues."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def first_of(*waits: Awaitable[Any], ignore: tuple[type[BaseException], ...] = ()) -> None:
    """Return when the first of ``waits`` is done; cancel the others and wait for them to end
    (errors of the types in ``ignore``, and cancellations, are swallowed)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, *ignore):
                await t
