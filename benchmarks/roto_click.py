"""From a click on a paused frame to its mask on screen, in the real editor (Chromium).

A server with the real SAM-style models, the editor in Debian's Chromium (Playwright), the
carphone sample in roto mode. The first click on a frame computes its embedding (seconds on a
CPU); every later click on that frame runs the prompt decoder alone. Measured in the page:
from the pointer going down to the frame after the mask is drawn (the page's own
``data-mask`` turning ``shown`` for that many clicks, then one animation frame). And, for
comparison, the mask endpoint alone over HTTP on the same warm frame.

    .venv/bin/python benchmarks/roto_click.py [--clicks 20]

The target (issue 9): a click on an already-embedded frame shows its mask within 150 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from playhead import samples
from playhead.bench.browser import launch
from playhead.bench.stats import percentile
from playhead.server.config import ServeConfig
from playhead.server.embedded import serve

# in the page: the time from pointerdown on the picture to the frame after its mask is shown,
# and from the mask's answer (resource timing) to then
TIMER = """() => {
  window.__clicks = [];
  let down = 0;
  document.querySelector('#view').addEventListener('pointerdown', () => {
    down = performance.now();
  }, true);
  const roto = document.querySelector('#roto');
  new MutationObserver(() => {
    if (down && roto.dataset.mask === 'shown') {
      const start = down;
      down = 0;
      requestAnimationFrame(() => {
        const now = performance.now();
        const asked = performance.getEntriesByType('resource')
          .filter((e) => e.name.endsWith('/mask') && e.startTime >= start);
        const last = asked.length ? asked[asked.length - 1] : null;
        window.__clicks.push([
          now - start, now - (last ? last.responseEnd : now), (last ? last.startTime : now) - start,
        ]);
      });
    }
  }).observe(roto, { attributes: true, attributeFilter: ['data-mask', 'data-mask-points'] });
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    clip = samples.fetch()["carphone.mp4"]
    with (
        tempfile.TemporaryDirectory() as data,
        serve(ServeConfig(data_dir=Path(data), workers=1)) as server,
        sync_playwright() as p,
    ):
        with server.client() as c, clip.open("rb") as f:
            asset = c.post("/api/assets", files={"file": (clip.name, f, "video/mp4")}).json()
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(server.url)
        page.get_by_role("button", name=clip.name).first.click()
        page.select_option("#effect-select", "roto")
        page.wait_for_function(
            "(p => p.dataset.shown === p.dataset.render && p.dataset.frame === '0')"
            "(document.querySelector('#player'))",
            timeout=60_000,
        )
        page.evaluate(TIMER)
        box = page.locator("#view").bounding_box()
        assert box is not None
        w, h = asset["width"], asset["height"]
        # the person's face and chest, alternately include and exclude near the edge
        spots = [(0.5, 0.45, ""), (0.5, 0.8, ""), (0.15, 0.2, "Alt")]
        for i in range(args.clicks + 1):
            x, y, modifier = spots[i % len(spots)]
            page.locator("#view").click(
                position={"x": x * box["width"], "y": y * box["height"]},
                modifiers=["Alt"] if modifier else [],
            )
            page.wait_for_function(f"window.__clicks.length === {i + 1}", timeout=60_000)
        times = page.evaluate("window.__clicks")
        browser.close()
        body = {"points": [{"x": w * 0.5, "y": h * 0.45, "label": 1}]}
        server_ms = []
        with server.client() as c:
            for _ in range(args.clicks):
                started = time.perf_counter()
                c.post(f"/api/assets/{asset['id']}/frames/0/mask", json=body).raise_for_status()
                server_ms.append(1000 * (time.perf_counter() - started))
    first, warm = times[0][0], [t for t, _, _ in times[1:]]
    drawing = [d for _, d, _ in times[1:]]
    asking = [a for _, _, a in times[1:]]
    print(f"first click on a frame (models loaded, embedding computed): {first:.0f} ms")
    print(
        f"click → mask on screen, warm frame: median {statistics.median(warm):.0f} ms, "
        f"p95 {percentile(warm, 0.95):.0f} ms, max {max(warm):.0f} ms ({len(warm)} clicks)"
    )
    print(
        f"  of which click → request sent: median {statistics.median(asking):.0f} ms, "
        f"answer → on screen (decode, draw): median {statistics.median(drawing):.0f} ms"
    )
    print(
        f"mask endpoint alone (HTTP): median {statistics.median(server_ms):.0f} ms, "
        f"p95 {percentile(server_ms, 0.95):.0f} ms"
    )


if __name__ == "__main__":
    main()
