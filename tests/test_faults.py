"""Faults on a real deployment (`playhead.cluster`): redis-server, a SeaweedFS S3 server, API
replicas behind a TCP proxy and worker processes, all real processes. Workers and replicas are
killed with SIGKILL, stopped with SIGSTOP, drained with SIGTERM; Redis and the S3 server are
restarted. Each test leaves the cluster whole again (what it killed is started anew)."""

from __future__ import annotations

import asyncio
import io
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from waiting import eventually

from playhead.board import WorkerInfo
from playhead.board.redis import RedisBoard
from playhead.cluster.process import Service
from playhead.cluster.run import Cluster, ClusterConfig
from playhead.media.testsrc import make_barcode_video, read_barcode

LEASE = 2.0
FPS = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    config = ClusterConfig(
        tmp_path_factory.mktemp("cluster"),
        replicas=2,
        workers=2,
        lease_s=LEASE,
        grace_s=10,
        sample=False,
    )
    with Cluster(config) as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "faults.mp4"
    return make_barcode_video(path, 4 * FPS, Fraction(FPS), (96, 64))


def new_render(cluster: Cluster, clip: Path, ms_per_frame: float) -> dict[str, Any]:
    """A render no other test has touched (the cost is part of the render's identity)."""
    with httpx.Client(base_url=cluster.url, timeout=60) as c:
        with clip.open("rb") as f:
            asset = c.post("/api/assets", files={"file": (clip.name, f, "video/mp4")}).json()
        params = {"ms_per_frame": ms_per_frame, "mode": "sleep"}
        r = c.post("/api/renders", json={"asset": asset["id"], "effect": "cost", "params": params})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def fetch(url: str, timeout: float = 90) -> httpx.Response:
    """GET like a player: retry on 503 and on connections that break, with a deadline."""
    got: list[httpx.Response] = []

    def answered() -> bool:
        try:
            with httpx.Client(timeout=60) as c:
                r = c.get(url)
        except httpx.TransportError:
            return False  # the replica went away mid-request: a new connection, another one
        if r.status_code == 503:
            return False
        got.append(r)
        return True

    eventually(answered, f"an answer from {url}", timeout)
    return got[0]


def decoded(init: bytes, segment: bytes) -> list[int]:
    with av.open(io.BytesIO(init + segment), "r") as c:
        return [read_barcode(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def play(base: str, render: dict[str, Any]) -> list[int]:
    """Every frame of the render, segment by segment, as a player would fetch them."""
    prefix = f"{base}/api/renders/{render['id']}/composite"
    init = fetch(f"{prefix}/init.mp4").content
    frames: list[int] = []
    for k in range(render["segments"]):
        r = fetch(f"{prefix}/{k}.m4s")
        assert r.status_code == 200, r.text
        frames += decoded(init, r.content)
    return frames


def workers(cluster: Cluster) -> list[WorkerInfo]:
    async def ask() -> list[WorkerInfo]:
        board = await RedisBoard.connect(cluster.redis_url)
        try:
            return await board.workers()
        finally:
            await board.close()

    return asyncio.run(ask())


def holder(cluster: Cluster, job: str) -> Service:
    """The worker process running ``job`` now (waits for one to claim it; from the logs)."""
    found: list[Service] = []

    def claimed() -> bool:
        found[:] = [
            w
            for w in cluster.workers
            if w.alive()
            and f"claimed {job} " in (text := w.log.read_text())
            and f"finished {job}" not in text
        ]
        return bool(found)

    eventually(claimed, f"a worker to claim {job}")
    return found[0]


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_a_killed_workers_segment_is_rendered_by_another(cluster: Cluster, clip: Path) -> None:
    render = new_render(cluster, clip, ms_per_frame=80)  # 2 s a segment
    url = f"{cluster.url}/api/renders/{render['id']}/composite/1.m4s"
    request, response = in_background(lambda: fetch(url))
    victim = holder(cluster, f"{render['id']}:1")
    victim.kill()  # kill -9 mid-segment
    killed = time.monotonic()
    request.join(90)
    served = time.monotonic() - killed
    assert response and response[0].status_code == 200
    print(f"\nsegment of a killed worker served {served:.1f} s later (lease {LEASE} s)")
    frames = play(cluster.url, render)
    assert frames == list(range(4 * FPS))  # every segment, every frame, in order
    cluster.workers.remove(victim)
    cluster.add_worker()


def test_a_stalled_workers_late_completion_is_rejected(cluster: Cluster, clip: Path) -> None:
    render = new_render(cluster, clip, ms_per_frame=60)
    job = f"{render['id']}:2"
    url = f"{cluster.url}/api/renders/{render['id']}/composite/2.m4s"
    request, response = in_background(lambda: fetch(url))
    stalled = holder(cluster, job)
    stalled.signal(signal.SIGSTOP)  # alive but silent: its lease lapses, another takes over
    try:
        request.join(90)
        assert response and response[0].status_code == 200
    finally:
        stalled.signal(signal.SIGCONT)
    served = response[0].content

    def told() -> bool:
        return bool(re.search(rf"lease on {re.escape(job)} was lost", stalled.log.read_text()))

    eventually(told, "the stalled worker to learn that its lease was lost")
    assert fetch(url).content == served  # what the new holder wrote stays
    assert f"finished {job}" not in stalled.log.read_text().split("was lost")[-1]


def test_a_viewer_plays_on_when_its_replica_is_killed(cluster: Cluster, clip: Path) -> None:
    render = new_render(cluster, clip, ms_per_frame=20)
    frames: list[int] = []
    prefix = f"{cluster.url}/api/renders/{render['id']}/composite"
    init = fetch(f"{prefix}/init.mp4").content
    frames += decoded(init, fetch(f"{prefix}/0.m4s").content)
    victim = cluster.replicas[0]
    victim.kill()  # the replica this viewer's connections may be on, and perhaps the planner
    try:
        for k in range(1, render["segments"]):
            r = fetch(f"{prefix}/{k}.m4s")
            assert r.status_code == 200, r.text
            frames += decoded(init, r.content)
        assert frames == list(range(4 * FPS))
    finally:
        victim.start()  # the same port again: the proxy finds it


def test_a_redis_restart_loses_no_segment(cluster: Cluster, clip: Path) -> None:
    for how in ("stop", "kill"):  # SIGTERM, then SIGKILL (the append-only file keeps it)
        render = new_render(cluster, clip, ms_per_frame=30 if how == "stop" else 31)
        prefix = f"{cluster.url}/api/renders/{render['id']}/composite"
        init = fetch(f"{prefix}/init.mp4").content
        frames = decoded(init, fetch(f"{prefix}/0.m4s").content)  # playing, and then:
        getattr(cluster.redis, how)()
        cluster.redis.start()
        for k in range(1, render["segments"]):
            r = fetch(f"{prefix}/{k}.m4s")
            assert r.status_code == 200, r.text
            frames += decoded(init, r.content)
        assert frames == list(range(4 * FPS)), how


def test_the_store_going_away_is_a_clear_error_and_nothing_is_lost(
    cluster: Cluster, clip: Path
) -> None:
    render = new_render(cluster, clip, ms_per_frame=1)
    before = play(cluster.url, render)
    segment = f"{cluster.url}/api/renders/{render['id']}/composite/1.m4s"
    cluster.s3.stop()
    try:
        started = time.monotonic()
        with httpx.Client(timeout=60) as c:
            r = c.get(segment)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "store_unavailable"
        print(f"\nstore down: answered in {time.monotonic() - started:.2f} s: {r.json()}")
        with httpx.Client(timeout=60) as c:
            assert c.get(f"{cluster.url}/healthz").status_code == 200  # still serving
    finally:
        cluster.s3.start()
    assert play(cluster.url, render) == before  # the same segments, from the same store


def test_sigterm_lets_a_busy_worker_finish_then_exit(cluster: Cluster, clip: Path) -> None:
    render = new_render(cluster, clip, ms_per_frame=60)

    def segment(k: int) -> Callable[[], httpx.Response]:
        return lambda: fetch(f"{cluster.url}/api/renders/{render['id']}/composite/{k}.m4s")

    requests = [in_background(segment(k)) for k in range(render["segments"])]
    busy = holder(cluster, f"{render['id']}:0")
    busy.signal(signal.SIGTERM)
    assert busy.wait(60) == 0
    log = busy.log.read_text()
    after = log[log.rfind("stopping") :]
    assert f"finished {render['id']}:0" in after  # the segment in hand was finished
    assert "claimed" not in after  # and nothing more was taken
    for t, out in requests:
        t.join(90)
        assert out and out[0].status_code == 200
    cluster.workers.remove(busy)
    cluster.add_worker()


def test_workers_announce_themselves(cluster: Cluster) -> None:
    eventually(lambda: len(workers(cluster)) == len(cluster.workers), "every worker announced")
    pids = {s.proc.pid for s in cluster.workers if s.proc}
    assert {int(w.name.rsplit("-", 2)[-2]) for w in workers(cluster)} == pids
