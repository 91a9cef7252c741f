"""A real multi-process deployment on this machine: what ``playhead cluster`` starts.

    redis-server (append-only file)          the shared queue and board
    SeaweedFS S3 server, bucket "playhead"   the shared store
    N × playhead serve --workers 0           stateless API replicas
    M × playhead worker                      worker processes
    a TCP round-robin proxy                  one URL for the browser, like a load balancer

Every process gets its settings the way a container would: the Redis and store URLs and the
standard AWS variables. The fault tests and the cluster benchmarks drive the same class: they
kill -9 workers and replicas, restart Redis and the S3 server, and watch what viewers get.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from playhead.cluster.process import Service, ServiceError, free_port, port_open
from playhead.cluster.proxy import ProxyThread
from playhead.cluster.redis_server import redis_server, redis_url
from playhead.cluster.s3_server import S3Server, s3_server

BUCKET = "playhead"


@dataclass
class ClusterConfig:
    data_dir: Path
    replicas: int = 2
    workers: int = 2
    port: int = 0  # the proxy's port (0: a free one)
    lease_s: float = 30.0  # workers' leases: how soon a killed worker's job runs elsewhere
    grace_s: float = 25.0  # a worker's drain after SIGTERM
    sample: bool = True  # ingest the sample clip through the first replica
    serve_args: Sequence[str] = field(default_factory=tuple)
    worker_args: Sequence[str] = field(default_factory=tuple)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Cluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        root = config.data_dir
        self.redis = redis_server(root / "redis")
        self.s3: S3Server = s3_server(root / "s3")
        self.replicas: list[Service] = []
        self.workers: list[Service] = []
        self.port = config.port or free_port()
        self.proxy: ProxyThread | None = None
        self._added_workers = self._added_replicas = 0

    # ---- what every process is told ---------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return redis_url(self.redis)

    @property
    def store_url(self) -> str:
        return f"s3://{BUCKET}/"

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.s3.client_env(),
            "PLAYHEAD_REDIS": self.redis_url,
            "PLAYHEAD_STORE": self.store_url,
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.replicas[i].port}"

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.redis.start()
            self.s3.start()
            self.s3.create_bucket(BUCKET)
            for i in range(self.config.replicas):
                self.add_replica(sample=self.config.sample and i == 0)
            for i in range(self.config.workers):
                # like the embedded server: workers after the first are a reserve for seeks
                self.add_worker(*([] if i == 0 else ["--headroom", "6"]))
            self.proxy = ProxyThread(self.port, [r.port for r in self.replicas])
            self.proxy.start()
            deadline = time.monotonic() + 10
            while not port_open(self.port):
                if time.monotonic() > deadline:
                    raise ServiceError(f"the proxy did not listen on {self.port}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def add_replica(self, sample: bool = False) -> Service:
        self._added_replicas += 1
        i = self._added_replicas - 1
        port = free_port()
        argv = [
            *_playhead("serve"),
            "--data", str(self.config.data_dir / f"replica-{i}"),
            "--port", str(port),
            "--workers", "0",
            *([] if sample else ["--no-sample"]),
            *self.config.serve_args,
        ]  # fmt: skip
        replica = Service(
            f"replica-{i}",
            argv,
            port,
            self.config.data_dir / f"replica-{i}.log",
            env=self.env,
            ready=lambda: _healthy(port),
            start_timeout_s=120,
        )
        replica.start()
        self.replicas.append(replica)
        return replica

    def add_worker(self, *extra: str) -> Service:
        # numbered by how many were ever added, not how many are left: a replacement for a
        # killed worker must not share a live one's log and data directory
        self._added_workers += 1
        i = self._added_workers - 1
        argv = [
            *_playhead("worker"),
            "--data", str(self.config.data_dir / f"worker-{i}"),
            "--lease", str(self.config.lease_s),
            "--grace", str(self.config.grace_s),
            *self.config.worker_args,
            *extra,
        ]  # fmt: skip
        # a worker listens on nothing: it is up once its process runs
        worker = Service(
            f"worker-{i}",
            argv,
            0,
            self.config.data_dir / f"worker-{i}.log",
            env=self.env,
            ready=lambda: True,
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for s in [*self.workers, *self.replicas]:
            with contextlib.suppress(Exception):
                s.stop(timeout=max(10.0, self.config.grace_s + 5))
        for s in (self.s3, self.redis):
            with contextlib.suppress(Exception):
                s.stop()

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _playhead(command: str) -> list[str]:
    return [sys.executable, "-m", "playhead.cli", command]


def environment_summary(cluster: Cluster) -> str:
    lines = [
        f"editor and API:  {cluster.url}/  (round-robin over {len(cluster.replicas)} replicas)",
        *(f"  replica {i}:     {cluster.replica_url(i)}" for i in range(len(cluster.replicas))),
        f"workers:         {len(cluster.workers)} processes",
        f"queue and board: {cluster.redis_url}",
        f"store:           {cluster.store_url} at {cluster.s3.endpoint}",
        f"logs:            {cluster.config.data_dir}/*.log",
    ]
    return "\n".join(lines) + os.linesep
