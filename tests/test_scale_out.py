"""Two API replicas and a worker sharing a real redis-server and a real S3 server: a request
on one replica is served by a worker that another replica's runtime hosts, every replica sees
every completion, one replica plans for all, and neither cancels what the other's viewers
need."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from waiting import eventually
from websockets.sync.client import connect

from playhead.cluster.process import Service
from playhead.cluster.redis_server import redis_url
from playhead.cluster.s3_server import S3Server
from playhead.media.testsrc import make_barcode_video
from playhead.queue import Change, JobState
from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve
from playhead.server.runtime import Runtime


@pytest.fixture(scope="module")
def replicas(
    services: tuple[Service, S3Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, Running]]:
    """Replica a has no workers; replica b hosts one (as a worker process would)."""
    redis, s3 = services
    env = pytest.MonkeyPatch()
    for key, value in s3.client_env().items():
        env.setenv(key, value)
    common: dict[str, Any] = {
        "redis": redis_url(redis),
        "store": "s3://playhead/run",
        "segment_wait_s": 60,
    }
    with ExitStack() as stack:
        a = stack.enter_context(
            serve(ServeConfig(data_dir=tmp_path_factory.mktemp("a"), workers=0, **common))
        )
        b = stack.enter_context(
            serve(ServeConfig(data_dir=tmp_path_factory.mktemp("b"), workers=1, **common))
        )
        yield a, b
    env.undo()


def runtime(server: Running) -> Runtime:
    return cast(Runtime, cast(FastAPI, server.app).state.runtime)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_barcode_video(
        tmp_path_factory.mktemp("clip") / "c.mp4", 100, Fraction(25), (96, 64)
    )


def _render(server: Running, clip: Path, **params: Any) -> dict[str, Any]:
    with server.client() as c, clip.open("rb") as f:
        asset = c.post("/api/assets", files={"file": ("c.mp4", f, "video/mp4")}).json()
        body = {"asset": asset["id"], "effect": "cost", "params": params}
        r = c.post("/api/renders", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_one_replica_serves_what_a_worker_behind_another_rendered(
    replicas: tuple[Running, Running], clip: Path
) -> None:
    a, b = replicas
    render = _render(a, clip, ms_per_frame=1.0, mode="sleep")  # uploaded through a
    with connect(a.ws_url) as ws:  # a viewer on a learns of b's worker's completions
        ws.send(json.dumps({"type": "watch", "render": render["id"]}))
        with a.client() as c:
            r = c.get(f"/api/renders/{render['id']}/composite/2.m4s")
        assert r.status_code == 200 and r.content[4:8] in (b"styp", b"moof")
        deadline = time.monotonic() + 30
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg["type"] == "segment" and msg["index"] == 2 and msg["state"] == "ready":
                break
            assert time.monotonic() < deadline
    with b.client() as c:  # and b serves it from the shared store
        assert c.get(f"/api/renders/{render['id']}/composite/2.m4s").content == r.content
    assert [runtime(x).planning.leading for x in (a, b)].count(True) == 1


def test_replicas_never_cancel_what_the_other_replicas_viewers_need(
    replicas: tuple[Running, Running], clip: Path
) -> None:
    """A viewer on each replica plays and seeks forward; the one planner plans for both, so
    the only jobs ever cancelled are behind a viewer's playhead (two planners would cancel
    each other's viewers' work as soon as it was queued)."""
    a, b = replicas
    ra = _render(a, clip, ms_per_frame=20.0, mode="sleep")
    rb = _render(b, clip, ms_per_frame=20.0, mode="sleep")
    seeks = {ra["id"]: [0, 50, 90], rb["id"]: [0, 30, 80]}
    at: dict[str, int] = {ra["id"]: 0, rb["id"]: 0}  # each viewer's playhead, as it reports
    wrong: list[tuple[str, int, int]] = []

    finished = threading.Event()  # the viewers are leaving: cancelling is right from then

    def on_change(change: Change) -> None:
        render_id, _, k = change.job_id.rpartition(":")
        cancelled = change.state is JobState.CANCELLED and render_id in at
        # a cancelled job not behind its viewer's playhead was still needed
        if cancelled and not finished.is_set() and int(k) >= at[render_id] // 25:
            wrong.append((render_id, int(k), at[render_id]))

    stop_watching = runtime(a).queue.watch(on_change)
    errors: list[BaseException] = []
    watching = threading.Barrier(2)

    def viewer(server: Running, render: dict[str, Any]) -> None:
        try:
            with connect(server.ws_url) as ws, server.client() as c:
                ws.send(json.dumps({"type": "watch", "render": render["id"]}))
                for frame in seeks[render["id"]]:
                    at[render["id"]] = frame
                    report = {"type": "playhead", "frame": frame, "playing": True, "rate": 1.0}
                    ws.send(json.dumps(report))
                    k = frame // render["segment_frames"]
                    got = c.get(f"/api/renders/{render['id']}/composite/{k}.m4s")
                    assert got.status_code == 200, got.text
                watching.wait(60)  # both still watching until both are done
                finished.set()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=viewer, args=(a, ra)),
        threading.Thread(target=viewer, args=(b, rb)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop_watching()
    assert not errors, errors
    assert not wrong, wrong
    leaders = [runtime(x).planning for x in (a, b) if runtime(x).planning.leading]
    assert len(leaders) == 1  # one planner, for both replicas' viewers


def test_a_guess_from_requests_never_outweighs_a_viewer_on_another_replica(
    replicas: tuple[Running, Running], clip: Path
) -> None:
    """Behind a load balancer a player's WebSocket and its segment requests reach different
    replicas; the one serving the requests guesses a viewer at the requested segment (its
    buffer, far ahead). The planner keeps to the real viewer's reports."""
    a, b = replicas
    render = _render(a, clip, ms_per_frame=1.0, mode="sleep")
    marker = _render(a, clip, ms_per_frame=1.5, mode="sleep")
    with connect(a.ws_url) as ws, connect(a.ws_url) as other:
        ws.send(json.dumps({"type": "watch", "render": render["id"]}))
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": True, "rate": 1.0}))
        with b.client() as c:  # the player's buffer, filled through the other replica
            assert c.get(f"/api/renders/{render['id']}/composite/3.m4s").status_code == 200
        # another viewer's report: once the planner has it, it has had the guess (in order)
        other.send(json.dumps({"type": "watch", "render": marker["id"]}))
        planning = next(runtime(x).planning for x in (a, b) if runtime(x).planning.leading)
        planner = planning.planner
        assert planner is not None
        eventually(
            lambda: any(s.render == marker["id"] for s in planner.sessions.values()),
            "the planner to hear the later report",
            10,
        )
        viewers = [s for s in planner.sessions.values() if s.render == render["id"]]
        assert [s.id.split(":")[0] for s in viewers] == ["ws"]  # no guessed viewer
