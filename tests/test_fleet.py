"""A fleet of two device classes on real processes (redis-server, SeaweedFS, two API replicas,
``playhead worker --device cpu`` and ``--device cuda``): a job reaches only workers of its
class, and the demand the autoscaler reads is the same on every replica and follows what the
viewers play. (Without a GPU here, the ``cuda`` worker runs its models on the CPU fallback;
routing is what is under test.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_faults import fetch
from tiny_onnx import tiny_model
from waiting import eventually
from websockets.sync.client import connect

from playhead.cluster.run import Cluster, ClusterConfig
from playhead.media.testsrc import make_barcode_video
from playhead.queue import JobState
from playhead.queue.redis import RedisQueue

FPS = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    config = ClusterConfig(
        tmp_path_factory.mktemp("fleet"),
        replicas=2,
        workers=0,
        lease_s=2.0,
        grace_s=5.0,
        sample=False,
        serve_args=("--device-classes", "cuda,cpu"),
    )
    with Cluster(config) as running:
        running.add_worker("--device", "cpu")
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "fleet.mp4"
    return make_barcode_video(path, 8 * FPS, Fraction(FPS), (96, 64))


def _render(base: str, clip: Path, effect: str, params: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=60) as c:
        with clip.open("rb") as f:
            asset = c.post("/api/assets", files={"file": (clip.name, f, "video/mp4")}).json()
        r = c.post("/api/renders", json={"asset": asset["id"], "effect": effect, "params": params})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _job_state(cluster: Cluster, queue: str, job_id: str) -> JobState | None:
    async def ask() -> JobState | None:
        q = await RedisQueue.connect(cluster.redis_url, name=queue)
        try:
            return await q.state(job_id)
        finally:
            await q.close()

    return asyncio.run(ask())


def _fleet(cluster: Cluster, i: int) -> dict[str, Any] | None:
    r = httpx.get(f"{cluster.replica_url(i)}/api/fleet", timeout=30)
    if r.status_code == 503:
        return None
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_job_reaches_only_workers_of_its_device_class(
    cluster: Cluster, clip: Path, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    gpu = _render(cluster.url, clip, "onnx", {"model": str(model)})  # prefers cuda
    cpu = _render(cluster.url, clip, "cost", {"ms_per_frame": 1.0, "mode": "sleep"})
    with connect(cluster.url.replace("http", "ws") + "/api/sessions") as ws:
        ws.send(json.dumps({"type": "watch", "render": gpu["id"]}))  # queues its first segments
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": False, "rate": 1.0}))
        gpu_job = f"{gpu['id']}:0"
        eventually(
            lambda: _job_state(cluster, "segments-cuda", gpu_job) is JobState.QUEUED,
            "the onnx segment waiting in the cuda queue",
        )
        # the cpu worker renders the cpu render, and is idle again with the cuda job waiting
        r = fetch(f"{cluster.url}/api/renders/{cpu['id']}/composite/0.m4s")
        assert r.status_code == 200
        assert _job_state(cluster, "segments-cpu", f"{cpu['id']}:0") is JobState.DONE
        assert _job_state(cluster, "segments-cpu", gpu_job) is None  # never in its queue
        assert _job_state(cluster, "segments-cuda", gpu_job) is JobState.QUEUED
        cluster.add_worker("--device", "cuda")  # a GPU node joins: now it is rendered
        r = fetch(f"{cluster.url}/api/renders/{gpu['id']}/composite/0.m4s")
        assert r.status_code == 200
        assert _job_state(cluster, "segments-cuda", gpu_job) is JobState.DONE


def test_every_replica_answers_the_same_demand_and_it_follows_the_viewers(
    cluster: Cluster, clip: Path
) -> None:
    render = _render(cluster.url, clip, "cost", {"ms_per_frame": 30.0, "mode": "sleep"})
    answers: list[dict[str, Any]] = []

    def same_on_both(predicate: Any) -> bool:
        a, b = _fleet(cluster, 0), _fleet(cluster, 1)
        if a is None or a != b or not predicate(a["classes"]["cpu"]):
            return False
        answers.append(a)
        return True

    eventually(lambda: same_on_both(lambda cpu: True), "one answer from both replicas")
    idle = answers[-1]["classes"]["cpu"]["playing"]
    assert set(answers[-1]["classes"]) == {"cuda", "cpu"}
    with connect(cluster.url.replace("http", "ws") + "/api/sessions") as ws:
        ws.send(json.dumps({"type": "watch", "render": render["id"]}))
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": True, "rate": 1.0}))
        eventually(
            lambda: same_on_both(lambda cpu: cpu["playing"] > idle and cpu["desired_workers"] > 0),
            "a playing viewer's demand, alike on both replicas",
        )
        playing = answers[-1]["classes"]["cpu"]["playing"]
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": False, "rate": 1.0}))
        eventually(
            lambda: same_on_both(lambda cpu: cpu["playing"] < playing),
            "the demand falling when the viewer pauses",
        )
    metrics = httpx.get(f"{cluster.replica_url(1)}/metrics", timeout=30).text
    assert 'playhead_desired_workers{device="cpu"}' in metrics
