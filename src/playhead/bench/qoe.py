"""``playhead bench qoe``: simulated viewers against a real server, one run per policy.

For each policy, a fresh server (own data directory, cold cache) serves one generated clip
through the chosen effect, and N simulated players follow seeded scripts (play, seek to a
random point, pause, resume). Reported per policy: startup time, seek-to-first-frame p50/p95,
stall count and stall ratio, segment render latency and server throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

from playhead.bench.player import Player, PlayerReport, Step
from playhead.bench.stats import percentile
from playhead.cluster.run import Cluster, ClusterConfig
from playhead.effects import registry
from playhead.media.testsrc import make_barcode_video
from playhead.server.config import ServeConfig
from playhead.server.embedded import serve


def script(rng: random.Random) -> list[Step]:
    return [
        Step("play", 8.0),
        Step("seek", 6.0, at=rng.uniform(0.3, 0.85)),
        Step("pause", 2.0),
        Step("play", 5.0),
        Step("seek", 6.0, at=rng.uniform(0.05, 0.6)),
    ]


PATTERNS = ("mixed", "shared", "continuous")
"""mixed: each player watches its own render (independent users) and plays, seeks, pauses;
shared: every player watches the same render with that script; continuous: one player plays
the whole clip from the start."""


TARGETS = ("embedded", "cluster")
"""embedded: one `playhead serve` with 2 worker threads; cluster: `playhead cluster` with 2 API
replicas behind its proxy and 2 worker processes, on Redis and an S3 server."""


def run_policy(
    policy: str,
    effect: str,
    params: dict[str, Any],
    seconds: int,
    players: int,
    seed: int,
    pattern: str = "mixed",
    target: str = "embedded",
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp), policy, target) as base:
        n = 1 if pattern == "continuous" else players
        # mixed: one clip per player (same content and cost, another file): independent users
        clips = [make_clip(Path(tmp), seconds, phase=i) for i in range(n)]
        with httpx.Client(base_url=base, timeout=120) as c:
            assets = [_upload(c, clips[i if pattern == "mixed" else 0]) for i in range(n)]
            renders = [
                c.post(
                    "/api/renders", json={"asset": a["id"], "effect": effect, "params": params}
                ).json()
                for a in assets
            ]
        started = time.perf_counter()
        duration = float(assets[0]["duration"])
        reports = asyncio.run(_players(base, renders, seed, pattern, duration))
        elapsed = time.perf_counter() - started
        metrics = _metrics(base, target)
    row = summarise(policy, reports, metrics, elapsed, pattern)
    row["target"] = target
    return row


@contextlib.contextmanager
def _server(root: Path, policy: str, target: str) -> Iterator[str]:
    """A fresh server (own data, cold cache) of either kind; its base URL."""
    if target == "cluster":
        config = ClusterConfig(
            root / "cluster", replicas=2, workers=2, sample=False, serve_args=("--policy", policy)
        )
        with Cluster(config) as cluster:
            yield cluster.url
    else:
        with serve(ServeConfig(data_dir=root / "data", workers=2, policy=policy)) as server:
            yield server.url


def _upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        r = client.post("/api/assets", files={"file": (path.name, f, "video/mp4")})
    r.raise_for_status()
    asset: dict[str, Any] = r.json()
    return asset


def _metrics(base: str, target: str) -> str:
    """Render metrics come from the planning replica: behind the proxy, ask until we hit it."""
    for _ in range(8):
        text = httpx.get(base + "/metrics").text
        if target == "embedded" or _metric_sum(text, "playhead_segment_render_seconds_count"):
            return text
    return text


async def _players(
    base: str, renders: list[dict[str, Any]], seed: int, pattern: str, duration: float
) -> list[PlayerReport]:
    async with httpx.AsyncClient(timeout=60) as client:
        tasks = []
        for i, render in enumerate(renders):
            steps = (
                [Step("play", duration + 5)]
                if pattern == "continuous"
                else script(random.Random(seed + i))
            )
            tasks.append(Player(base, render, client).run(steps))
        return list(await asyncio.gather(*tasks))


def _metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def summarise(
    policy: str, reports: list[PlayerReport], metrics: str, elapsed: float, pattern: str
) -> dict[str, Any]:
    seeks = [s for r in reports for s in r.seeks_s]
    startups = [r.startup_s for r in reports if r.startup_s is not None]
    stall_s = sum(r.stall_s for r in reports)
    watched = sum(r.watched_s for r in reports)
    rendered = _metric_sum(metrics, "playhead_segment_render_seconds_count")
    render_s = _metric_sum(metrics, "playhead_segment_render_seconds_sum")
    return {
        "policy": policy,
        "pattern": pattern,
        "players": len(reports),
        "startup_s": statistics.mean(startups) if startups else None,
        "seek_p50_s": percentile(seeks, 0.5),
        "seek_p95_s": percentile(seeks, 0.95),
        "unfinished_seeks": sum(r.unfinished_seeks for r in reports),
        "stalls": sum(r.stalls for r in reports),
        "stall_ratio": stall_s / max(watched + stall_s, 1e-9),
        "segments_rendered": int(rendered),
        "segment_render_s": render_s / rendered if rendered else None,
        "deadline_misses": int(_metric_sum(metrics, "playhead_deadline_misses_total")),
        "elapsed_s": elapsed,
    }


def make_clip(directory: Path, seconds: int, fps: int = 25, phase: int = 0) -> Path:
    path = directory / f"qoe-{phase}.mp4"
    if not path.exists():
        make_barcode_video(path, seconds * fps, Fraction(fps), (640, 360), phase=phase)
    return path


def main(args: Any) -> list[dict[str, Any]]:
    name, _, raw = args.effect.partition(":")
    effect = registry.get(name)
    params = registry.canonical_params(
        registry.parse_params(effect, registry.parse_cli_params(raw.split(",") if raw else []))
    )
    rows = []
    for pattern in args.pattern or list(PATTERNS):
        for policy in args.policy or ["deadline", "on-demand", "sequential"]:
            for target in args.target or ["embedded"]:
                rows.append(
                    run_policy(
                        policy, name, params, args.seconds, args.players, args.seed, pattern, target
                    )
                )
    return rows


def table(rows: list[dict[str, Any]], title: str) -> str:
    def f(v: Any, digits: int = 2) -> str:
        return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = [
        f"{title}",
        "| pattern | policy | target | startup s | seek p50 s | seek p95 s | stalls "
        "| stall ratio | render s/segment | segments | misses |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pattern']} | {r['policy']} | {r.get('target', 'embedded')} "
            f"| {f(r['startup_s'])} | {f(r['seek_p50_s'])} "
            f"| {f(r['seek_p95_s'])} | {r['stalls']} | {f(r['stall_ratio'], 3)} "
            f"| {f(r['segment_render_s'])} | {r['segments_rendered']} | {r['deadline_misses']} |"
        )
    return "\n".join(lines)
