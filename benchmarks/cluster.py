"""Scale-out on this machine (`playhead cluster`: Redis, an S3 server, replicas, workers).

scaling   throughput of 1, 2, 4 and 8 worker processes on a `cost` model that sleeps (a
          stand-in for a GPU: the 2 CPU cores are not what limits it), rendering a whole
          render for an export; efficiency = throughput ÷ (N × one worker's)
recovery  a worker killed (kill -9) while it renders a segment: how long until that
          segment is served by another worker, less one render of it, against the lease
served    an HLS client reading a whole render from a cold cache: the cluster (2 replicas,
          2 worker processes) against the embedded server (2 worker threads), one run each

.venv/bin/python benchmarks/cluster.py scaling [--workers 1 2 4 8] [--ms-per-frame 40]
.venv/bin/python benchmarks/cluster.py recovery [--lease 2] [--runs 3]
.venv/bin/python benchmarks/cluster.py served [--effect cost:ms_per_frame=20]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx

from playhead.cluster.run import Cluster, ClusterConfig
from playhead.effects import registry
from playhead.media.testsrc import make_barcode_video
from playhead.server.config import ServeConfig
from playhead.server.embedded import serve

FPS = 25


def clip(directory: Path, seconds: int, size: tuple[int, int] = (160, 96)) -> Path:
    return make_barcode_video(directory / f"clip-{seconds}.mp4", seconds * FPS, Fraction(FPS), size)


def upload_render(base: str, path: Path, effect: str, params: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=120) as c:
        with path.open("rb") as f:
            asset = c.post("/api/assets", files={"file": (path.name, f, "video/mp4")}).json()
        r = c.post("/api/renders", json={"asset": asset["id"], "effect": effect, "params": params})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def export_seconds(base: str, render: dict[str, Any]) -> float:
    """Wall time to render every segment and write the export."""
    with httpx.Client(base_url=base, timeout=120) as c:
        started = time.perf_counter()
        job = c.post(f"/api/renders/{render['id']}/exports", json={"format": "mp4"}).json()
        while job["state"] not in ("done", "failed"):
            time.sleep(0.05)
            job = c.get(f"/api/exports/{job['id']}").json()
        assert job["state"] == "done", job
        return time.perf_counter() - started


def wait_workers(base: str, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(base + "/healthz", timeout=30).json()["workers"] < n:
        assert time.monotonic() < deadline, f"{n} workers never announced themselves"
        time.sleep(0.1)


def scaling(args: argparse.Namespace) -> None:
    params = {"ms_per_frame": args.ms_per_frame, "mode": "sleep"}
    print(f"cost {args.ms_per_frame} ms/frame (sleeping), {args.seconds} s of 160x96 video")
    print("| worker processes | seconds | frames/s | × one worker | efficiency |")
    print("|--:|--:|--:|--:|--:|")
    one: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), args.seconds)
        for n in args.workers:
            config = ClusterConfig(Path(tmp) / f"c{n}", replicas=1, workers=n, sample=False)
            with Cluster(config) as cluster:
                wait_workers(cluster.url, n)
                render = upload_render(cluster.url, source, "cost", params)
                seconds = export_seconds(cluster.url, render)
            fps = args.seconds * FPS / seconds
            one = one or fps
            print(f"| {n} | {seconds:.1f} | {fps:.1f} | {fps / one:.2f} | {fps / one / n:.2f} |")


def _claimed(cluster: Cluster, job: str) -> Any:
    while True:
        for w in cluster.workers:
            if w.alive() and f"claimed {job} " in w.log.read_text():
                return w
        time.sleep(0.01)


def _get_at(url: str, when: list[float]) -> None:
    httpx.get(url, timeout=120).raise_for_status()
    when.append(time.monotonic())


def recovery(args: argparse.Namespace) -> None:
    params = {"ms_per_frame": args.ms_per_frame, "mode": "sleep"}
    render_s = args.ms_per_frame * FPS / 1000
    print(f"lease {args.lease} s, one segment renders in {render_s:.2f} s (cost, sleeping)")
    print("| run | killed → served s | less one render s | lease + 1 s |")
    print("|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), 1)  # one segment: nothing else keeps the survivor busy
        config = ClusterConfig(
            Path(tmp) / "c", replicas=1, workers=2, lease_s=args.lease, sample=False
        )
        with Cluster(config) as cluster:
            wait_workers(cluster.url, 2)
            for run in range(args.runs):
                render = upload_render(
                    cluster.url, source, "cost", {**params, "ms_per_frame": args.ms_per_frame + run}
                )
                url = f"{cluster.url}/api/renders/{render['id']}/composite/0.m4s"
                served: list[float] = []
                t = threading.Thread(target=_get_at, args=(url, served))
                t.start()
                victim = _claimed(cluster, f"{render['id']}:0")
                victim.kill()
                killed = time.monotonic()
                t.join(120)
                total = served[0] - killed
                print(
                    f"| {run + 1} | {total:.2f} | {total - render_s:.2f} | {args.lease + 1:.2f} |"
                )
                cluster.workers.remove(victim)
                cluster.add_worker()
                wait_workers(cluster.url, 2)


@contextmanager
def _target(kind: str, root: Path, workers: int) -> Iterator[str]:
    if kind == "cluster":
        config = ClusterConfig(root / "cluster", replicas=2, workers=workers, sample=False)
        with Cluster(config) as cluster:
            wait_workers(cluster.url, workers)
            yield cluster.url
    else:
        with serve(ServeConfig(data_dir=root / "embedded", workers=workers)) as server:
            yield server.url


def served(args: argparse.Namespace) -> None:
    name, _, raw = args.effect.partition(":")
    params = registry.parse_cli_params(raw.split(",") if raw else [])
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), args.seconds, (640, 360))
        for kind in ("embedded", "cluster"):
            with _target(kind, Path(tmp), args.workers) as base:
                render = upload_render(base, source, name, params)
                started = time.perf_counter()
                with av.open(base + render["playlists"]["composite"], "r") as container:
                    frames = sum(1 for _ in container.decode(video=0))
                rows[kind] = frames / (time.perf_counter() - started)
    print(f"effect {args.effect}, {args.workers} workers, {args.seconds} s of 640x360")
    print("| server | frames/s served |")
    print("|---|--:|")
    for kind, fps in rows.items():
        print(f"| {kind} | {fps:.1f} |")
    print(f"cluster ÷ embedded = {rows['cluster'] / rows['embedded']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True)
    s = sub.add_parser("scaling")
    s.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    s.add_argument("--ms-per-frame", type=float, default=40.0)
    s.add_argument("--seconds", type=int, default=60)
    s.set_defaults(func=scaling)
    r = sub.add_parser("recovery")
    r.add_argument("--lease", type=float, default=2.0)
    r.add_argument("--ms-per-frame", type=float, default=20.0)
    r.add_argument("--runs", type=int, default=3)
    r.set_defaults(func=recovery)
    v = sub.add_parser("served")
    v.add_argument("--effect", default="cost:ms_per_frame=20")
    v.add_argument("--workers", type=int, default=2)
    v.add_argument("--seconds", type=int, default=40)
    v.set_defaults(func=served)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
