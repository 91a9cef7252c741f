"""Served throughput against the tight loop, and worker threads against worker processes.

In one run, on one generated clip and one effect:

    tight/threads    N threads, each running the segment pipeline (decode → effect → encode)
                     over its share of the segments, as fast as it can
    tight/processes  the same with N processes
    served           a fresh `playhead serve` with N in-process workers; an HLS client reads
                     the whole render as fast as the server delivers it

and prints served ÷ tight/threads (the target is ≥ 0.9) and processes ÷ threads.

    .venv/bin/python benchmarks/served.py [--effect cost:ms_per_frame=20] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import httpx

from playhead.bench.qoe import make_clip
from playhead.effects import registry
from playhead.media.asset import AssetDir
from playhead.media.ingest import ingest
from playhead.pipeline import SegmentPipeline
from playhead.server.config import ServeConfig
from playhead.server.embedded import serve
from playhead.worker.segment_job import variant_encoder


def _render_share(data: str, asset_id: str, spec: str, share: list[int]) -> None:
    name, _, raw = spec.partition(":")
    effect = registry.get(name)
    params = registry.parse_params(effect, registry.parse_cli_params(raw.split(",") if raw else []))
    adir = AssetDir(Path(data) / "assets" / asset_id)
    asset, _ = adir.load()
    encoder = variant_encoder(asset, "composite")
    with SegmentPipeline(asset, adir, effect, effect.load(), params) as pipe:
        for k in share:
            result = pipe.render(k)
            encoder.encode(result.frames.start, result.composite)


def tight(data: Path, asset_id: str, spec: str, segments: int, workers: int, kind: str) -> float:
    shares = [list(range(i, segments, workers)) for i in range(workers)]
    args = [(str(data), asset_id, spec, share) for share in shares]
    started = time.perf_counter()
    if kind == "threads":
        threads = [threading.Thread(target=_render_share, args=a) for a in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_render_share, args=a) for a in args]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return time.perf_counter() - started


def served(clip: Path, spec: str, workers: int) -> tuple[float, int]:
    name, _, raw = spec.partition(":")
    params = registry.parse_cli_params(raw.split(",") if raw else [])
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        asset = ingest(clip, data)
        with serve(ServeConfig(data_dir=data, workers=workers)) as server:
            body = {"asset": asset.id, "effect": name, "params": params}
            render: dict[str, Any] = httpx.post(server.url + "/api/renders", json=body).json()
            started = time.perf_counter()
            with av.open(server.url + render["playlists"]["composite"]) as container:
                frames = sum(1 for _ in container.decode(video=0))
            return time.perf_counter() - started, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--effect", default="cost:ms_per_frame=20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp), args.seconds)
        data = Path(tmp) / "data"
        asset = ingest(clip, data)
        n = asset.frames
        t_threads = tight(data, asset.id, args.effect, asset.segments, args.workers, "threads")
        t_procs = tight(data, asset.id, args.effect, asset.segments, args.workers, "processes")
        t_served, got = served(clip, args.effect, args.workers)
    assert got == n, f"served {got} of {n} frames"
    print(f"effect {args.effect}, {args.workers} workers, {n} frames 640x360 @ {asset.fps} fps")
    print("| mode | frames/s |")
    print("|---|--:|")
    print(f"| tight loop, {args.workers} threads | {n / t_threads:.1f} |")
    print(f"| tight loop, {args.workers} processes | {n / t_procs:.1f} |")
    print(f"| served (HLS client, cold cache) | {n / t_served:.1f} |")
    print(f"served ÷ tight(threads) = {t_threads / t_served:.2f}")
    print(f"processes ÷ threads = {t_threads / t_procs:.2f}")


if __name__ == "__main__":
    main()
