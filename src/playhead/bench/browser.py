"""Debian's Chromium as tests and benchmarks drive it (Playwright, headless, no GPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Playwright is a development dependency
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",  # WebGL on the CPU: headless machines have no GPU
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
