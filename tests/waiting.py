"""Waiting for an event in a test: poll its condition until it holds, with a deadline.

Never a fixed sleep standing in for the event: under load a fixed sleep flakes, and on an idle
machine it passes by luck. A poll returns as soon as the event happened and fails, naming what
it waited for, when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.02


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


async def eventually_async(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_S)
