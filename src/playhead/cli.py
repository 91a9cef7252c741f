"""The ``playhead`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playhead import paths
from playhead.media.export import ExportFormat

FORMAT_BY_SUFFIX: dict[str, ExportFormat] = {
    ".mp4": "mp4",
    ".mov": "mov-alpha",
    ".webm": "webm-alpha",
    ".zip": "png-matte",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from playhead.errors import PlayheadError

    try:
        result: int = args.func(args)
        return result
    except PlayheadError as e:
        print(f"playhead: {e.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `playhead effects | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("playhead: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error still gets one line; PLAYHEAD_DEBUG shows more
        if os.environ.get("PLAYHEAD_DEBUG"):
            raise
        print(f"playhead: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="playhead", description=__doc__)
    p.add_argument(
        "--data", type=Path, default=None, help="data directory (default: $PLAYHEAD_HOME/data)"
    )
    sub = p.add_subparsers(metavar="COMMAND")

    r = sub.add_parser("render", help="render a video through an effect into a file")
    r.add_argument("input", type=Path)
    r.add_argument("--effect", "-e", required=True)
    r.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--out", "-o", required=True, type=Path)
    r.add_argument("--format", "-f", choices=["mp4", "mov-alpha", "webm-alpha", "png-matte"])
    r.add_argument("--batch", type=int, default=8, help="frames per effect batch")
    r.set_defaults(func=_render)

    sv = sub.add_parser("serve", help="serve the editor and the API (and in-process workers)")
    _data_option(sv)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--workers", type=int, default=2, help="in-process workers (0 for an API replica)"
    )
    sv.add_argument("--policy", choices=["deadline", "on-demand", "sequential"], default="deadline")
    sv.add_argument("--cache-gb", type=float, default=20.0, help="segment cache budget")
    sv.add_argument("--no-sample", action="store_true", help="do not ingest the sample clip")
    sv.add_argument(
        "--drain",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after SIGTERM, keep serving this long with /readyz answering 503 (a load "
        "balancer stops sending) before shutting down",
    )
    _fleet_options(sv)
    sv.add_argument(
        "--device-classes",
        default=os.environ.get("PLAYHEAD_DEVICE_CLASSES", "cpu"),
        help="with --redis: the device classes of the fleet's workers, one queue each, e.g. "
        "cuda,cpu (the first also runs exports; env PLAYHEAD_DEVICE_CLASSES)",
    )
    sv.set_defaults(func=_serve)

    w = sub.add_parser("worker", help="a worker process of a fleet: render from the shared queue")
    _data_option(w)
    _fleet_options(w, required=True)
    w.add_argument("--concurrency", type=int, default=1, help="jobs at once in this process")
    w.add_argument("--lease", type=float, default=30.0, help="lease length, seconds")
    w.add_argument(
        "--grace", type=float, default=25.0, help="seconds to finish a job after SIGTERM"
    )
    w.add_argument(
        "--device",
        default=os.environ.get("PLAYHEAD_DEVICE", "auto"),
        help="cpu, cuda, cuda:N or auto (detected): what this worker renders on; it claims "
        "from that device class's queue (env PLAYHEAD_DEVICE)",
    )
    w.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="frames per effect batch (default: what each effect prefers on the device)",
    )
    w.add_argument(
        "--headroom",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a reserve worker: while anyone plays, only work due within SECONDS (seeks "
        "then find it free)",
    )
    w.set_defaults(func=_worker)

    sim = sub.add_parser(
        "simulate",
        help="a day of a fleet at scale, on a driven clock: scaling strategies compared",
    )
    sim.add_argument("--viewers", type=int, default=100, help="concurrent viewers at the peak")
    sim.add_argument("--day", type=float, default=14400.0, help="seconds of the demand curve's day")
    sim.add_argument("--start", type=float, default=90.0, help="a new worker's start time, s")
    sim.add_argument(
        "--preempt", type=float, default=0.0, help="spot preemptions per worker-hour (0.05 = 5%%)"
    )
    sim.add_argument(
        "--strategy", action="append", choices=["demand", "queue", "fixed"], help="(all)"
    )
    sim.add_argument("--workers", type=int, default=None, help="the fixed fleet's size")
    sim.add_argument("--processes", type=int, default=2, help="strategies run in parallel")
    sim.add_argument("--plot", type=Path, default=None, help="write a PNG of the day here")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_simulate)

    c = sub.add_parser(
        "cluster", help="a real multi-process deployment here: Redis, S3, replicas, workers"
    )
    _data_option(c)
    c.add_argument("--port", type=int, default=8000, help="the load balancer's port")
    c.add_argument("--replicas", type=int, default=2, help="API replicas")
    c.add_argument("--workers", type=int, default=2, help="worker processes")
    c.set_defaults(func=_cluster)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(metavar="BENCHMARK")
    q = bsub.add_parser("qoe", help="simulated viewers against a server, per policy")
    q.add_argument("--policy", action="append", choices=["deadline", "on-demand", "sequential"])
    q.add_argument("--effect", default="cost:ms_per_frame=20", help="name[:key=value,...]")
    q.add_argument("--players", type=int, default=3)
    q.add_argument("--pattern", action="append", choices=["mixed", "shared", "continuous"])
    q.add_argument(
        "--target",
        action="append",
        choices=["embedded", "cluster"],
        help="embedded: one process; cluster: 2 replicas + 2 worker processes on Redis and S3",
    )
    q.add_argument("--seconds", type=int, default=60, help="length of the generated clip")
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_bench_qoe)

    e = sub.add_parser("effects", help="list effects and their parameters")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_effects)

    i = sub.add_parser("ingest", help="ingest a video and print the asset")
    i.add_argument("input", type=Path)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_ingest)

    m = sub.add_parser("models", help="model weights")
    msub = m.add_subparsers(metavar="ACTION")
    mf = msub.add_parser("fetch", help="download, verify and cache the model weights")
    mf.add_argument("--quiet", "-q", action="store_true")
    mf.set_defaults(func=_models_fetch)
    ms = msub.add_parser("status", help="show which weights are present and verified")
    ms.set_defaults(func=_models_status)

    s = sub.add_parser("samples", help="sample clips")
    ssub = s.add_subparsers(metavar="ACTION")
    sf = ssub.add_parser("fetch", help="download, verify and cache the sample clips")
    sf.add_argument("--quiet", "-q", action="store_true")
    sf.set_defaults(func=_samples_fetch)
    sp = ssub.add_parser("path", help="print the path of a sample clip (fetching it if needed)")
    sp.add_argument("name")
    sp.set_defaults(func=_samples_path)
    return p


def _data(args: argparse.Namespace) -> Path:
    return Path(args.data) if args.data else paths.data_dir()


def _data_option(p: argparse.ArgumentParser) -> None:
    """``--data`` also after the command (``playhead serve --data DIR``)."""
    p.add_argument("--data", type=Path, default=argparse.SUPPRESS, help="data directory")


def _fleet_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    redis, store = os.environ.get("PLAYHEAD_REDIS"), os.environ.get("PLAYHEAD_STORE")
    p.add_argument(
        "--redis",
        default=redis,
        required=required and redis is None,
        help="redis://HOST:PORT/DB: the fleet's shared queue (env PLAYHEAD_REDIS)",
    )
    p.add_argument(
        "--store",
        default=store,
        required=required and store is None,
        help="file:///shared/dir or s3://BUCKET/PREFIX (endpoint and credentials from the "
        "AWS_* variables; env PLAYHEAD_STORE)",
    )


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from playhead.effects import devices
    from playhead.server.app import create_app
    from playhead.server.config import ServeConfig
    from playhead.server.draining import DrainingServer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = ServeConfig(
        data_dir=_data(args),
        workers=args.workers,
        policy=args.policy,
        cache_bytes=int(args.cache_gb * 1024**3),
        redis=args.redis,
        store=args.store,
        device_classes=devices.parse_classes(args.device_classes),
        sample=not args.no_sample,
    )
    config.check()
    print(f"playhead: serving on http://{args.host}:{args.port}/", file=sys.stderr)
    app = create_app(config)
    server = DrainingServer(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning"), app, args.drain
    )
    server.run()
    return 0 if server.started else 3  # uvicorn's exit status for a failed startup


def _worker(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from playhead.effects import devices
    from playhead.worker.process import WorkerConfig, run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = WorkerConfig(
        redis=args.redis,
        store=args.store,
        data_dir=_data(args),
        concurrency=args.concurrency,
        lease_s=args.lease,
        grace_s=args.grace,
        headroom_s=args.headroom,
        device=devices.parse_device(args.device),
        batch_size=args.batch_size,
    )
    return asyncio.run(run(config))


def _simulate(args: argparse.Namespace) -> int:
    from playhead.simulate import run

    return run.main(args)


def _cluster(args: argparse.Namespace) -> int:
    import signal
    import threading

    from playhead.cluster.run import Cluster, ClusterConfig, environment_summary

    data = Path(args.data) if args.data else paths.home() / "cluster"
    config = ClusterConfig(data, args.replicas, args.workers, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Cluster(config) as cluster:
        print(environment_summary(cluster), file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        print("playhead: stopping the cluster", file=sys.stderr)
    return 0


def _bench_qoe(args: argparse.Namespace) -> int:
    from playhead.bench import qoe

    rows = qoe.main(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(qoe.table(rows, f"effect {args.effect}, {args.players} players"))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from playhead.media.ingest import ingest

    asset = ingest(args.input, _data(args))
    info = asset.public()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>15}  {value}")
    return 0


def _effects(args: argparse.Namespace) -> int:
    from playhead.effects import registry

    described = [registry.describe(e) for e in registry.effects().values()]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for d in described:
        print(f"{d['name']} (v{d['version']}): {d['description']}")
        print(f"    bands: {', '.join(d['bands'])}   variants: {', '.join(d['variants'])}")
        schema = d["params"]
        for name, prop in schema.get("properties", {}).items():
            print(f"    --param {name}={_schema_hint(prop)}  {prop.get('description', '')}")
    return 0


def _schema_hint(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "|".join(str(v) for v in prop["enum"])
    kind = prop.get("type") or "/".join(str(a.get("type")) for a in prop.get("anyOf", []))
    bounds = [f"{k}{prop[v]}" for k, v in ((">=", "minimum"), ("<=", "maximum")) if v in prop]
    default = f" (default {prop['default']})" if "default" in prop else ""
    return f"<{kind}{' ' + ' '.join(bounds) if bounds else ''}>{default}"


def _models_fetch(args: argparse.Namespace) -> int:
    from playhead.effects import models

    for path in models.fetch():
        if not args.quiet:
            print(f"ok  {path}")
    return 0


def _samples_fetch(args: argparse.Namespace) -> int:
    from playhead import samples

    for path in samples.fetch().values():
        if not args.quiet:
            print(f"ok  {path}")
    return 0


def _samples_path(args: argparse.Namespace) -> int:
    from playhead import samples
    from playhead.errors import UnsupportedError

    found = samples.fetch()
    if args.name not in found:
        raise UnsupportedError(f"no sample {args.name!r}; samples: {', '.join(found)}")
    print(found[args.name])
    return 0


def _models_status(args: argparse.Namespace) -> int:
    from playhead.effects import models

    missing = set(models.missing())
    for name in models.WEIGHTS:
        state, where = "MISSING" if name in missing else "ok", models.source(name)
        print(f"{state:>7}  {name:32} {where}: {models.SOURCES[where]}")
    if missing:
        print(f"fix: {models.FIX}", file=sys.stderr)
    return 1 if missing else 0


def _render(args: argparse.Namespace) -> int:
    from playhead.effects import registry
    from playhead.errors import UnsupportedError
    from playhead.media.export import open_writer
    from playhead.media.ingest import ingest
    from playhead.pipeline import SegmentPipeline
    from playhead.renders import check_export

    effect = registry.get(args.effect)
    params = registry.parse_params(effect, registry.parse_cli_params(args.param))
    fmt: ExportFormat | None = args.format or FORMAT_BY_SUFFIX.get(args.out.suffix.lower())
    if fmt is None:
        raise UnsupportedError(
            f"cannot tell the format from {args.out.name!r}; pass --format "
            "mp4|mov-alpha|webm-alpha|png-matte"
        )
    check_export(effect.name, fmt)
    if not args.out.parent.is_dir():
        raise UnsupportedError(f"output directory {args.out.parent} does not exist")

    data = _data(args)
    asset = ingest(args.input, data)
    runner = effect.load()
    from playhead.media.asset import AssetDir

    adir = AssetDir(data / "assets" / asset.id)
    writer = open_writer(fmt, args.out, asset.width, asset.height, asset.fps)
    started = time.perf_counter()
    try:
        with (
            SegmentPipeline(asset, adir, effect, runner, params, args.batch) as pipe,
            _progress(asset.frames, f"{effect.name} → {args.out.name}") as advance,
        ):
            for k in range(asset.segments):
                seg = pipe.render(k)
                colour = seg.composite if fmt == "mp4" else seg.colour
                writer.write(colour, seg.matte)
                advance(seg.frames.count)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    elapsed = time.perf_counter() - started
    print(
        f"wrote {args.out} ({fmt}): {asset.frames} frames in {elapsed:.1f} s "
        f"({asset.frames / elapsed:.1f} fps)",
        file=sys.stderr,
    )
    return 0


class _progress:
    """A rich progress bar (frames, fps, ETA) on a terminal; silent otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames"),
            TaskProgressColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total, fps=0.0)
        started = time.perf_counter()
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            fps = done[0] / max(time.perf_counter() - started, 1e-9)
            self._bar.update(task, advance=n, fps=fps)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


if __name__ == "__main__":
    sys.exit(main())
