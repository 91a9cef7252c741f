"""The embedded runtime's promises, each one a defect of the old single engine: a failing
segment is retried and then answers with its cause, a deleted asset stops nobody else, a
request's or a viewer's need ends with it, a second ``watch`` adds nothing, and results do not
depend on which jobs a worker ran before."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from waiting import eventually
from websockets.sync.client import connect

from playhead.effects import registry
from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.basic import PassthroughParams
from playhead.media.testsrc import make_barcode_video
from playhead.scheduler import Priority, priority_class
from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve
from playhead.server.runtime import Runtime

SEGMENT = 25  # frames per segment of the test clip (25 fps)


class _Failing:
    """A fake model that fails on one segment: always (``broken``), or on its first try
    (``flaky``). Counts its attempts per segment."""

    def __init__(self, name: str, segment: int, fail_times: int) -> None:
        self.name, self.segment, self.fail_times = name, segment, fail_times
        self.attempts: dict[int, int] = {}
        self.lock = threading.Lock()

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        k = context.first_frame // SEGMENT
        if context.first_frame % SEGMENT == 0:
            with self.lock:
                self.attempts[k] = self.attempts.get(k, 0) + 1
                tries = self.attempts[k]
            if k == self.segment and tries <= self.fail_times:
                raise RuntimeError(f"{self.name} model exploded on segment {k}")
        return {"rgb": frames, "matte": np.full(frames.shape[:3], 255, np.uint8)}

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return frames


def _effect(runner: _Failing) -> Any:
    class FailingEffect:
        name: ClassVar[str] = runner.name
        version: ClassVar[str] = "1"
        Params: ClassVar[type[EffectParams]] = PassthroughParams
        bands: ClassVar[tuple[Band, ...]] = ("rgb", "matte")
        context_frames: ClassVar[int] = 0

        def load(self) -> _Failing:
            return runner

    return FailingEffect()


@pytest.fixture(scope="module")
def broken() -> Iterator[_Failing]:
    runner = _Failing("broken", segment=1, fail_times=10**6)
    registry.effects()[runner.name] = _effect(runner)  # a plug-in, as an entry point would add
    yield runner
    registry.effects().pop(runner.name)


@pytest.fixture(scope="module")
def flaky() -> Iterator[_Failing]:
    runner = _Failing("flaky", segment=2, fail_times=1)
    registry.effects()[runner.name] = _effect(runner)
    yield runner
    registry.effects().pop(runner.name)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    config = ServeConfig(
        data_dir=tmp_path_factory.mktemp("serve"),
        workers=2,
        max_attempts=2,
        retry_backoff_s=0.05,
        segment_wait_s=120,  # long: an answer that comes early did not come from a timeout
    )
    with serve(config) as running:
        yield running


def runtime(server: Running) -> Runtime:
    return cast(Runtime, cast(FastAPI, server.app).state.runtime)


def upload(server: Running, path: Path) -> dict[str, Any]:
    with server.client() as c, path.open("rb") as f:
        r = c.post("/api/assets", files={"file": (path.name, f, "video/mp4")})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def render(server: Running, asset: str, effect: str, **params: Any) -> dict[str, Any]:
    with server.client() as c:
        r = c.post("/api/renders", json={"asset": asset, "effect": effect, "params": params})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_barcode_video(
        tmp_path_factory.mktemp("clips") / "a.mp4", 75, Fraction(25), (96, 64)
    )


@pytest.fixture(scope="module")
def other_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "b.mp4"
    return make_barcode_video(path, 75, Fraction(25), (96, 64), phase=7)


def test_a_segment_that_keeps_failing_answers_at_once_with_its_cause(
    server: Running, clip: Path, broken: _Failing
) -> None:
    asset = upload(server, clip)
    r = render(server, asset["id"], "broken")
    base = f"/api/renders/{r['id']}/composite"
    with server.client() as c:
        assert c.get(f"{base}/0.m4s").status_code == 200
        failed = c.get(f"{base}/1.m4s")  # tried max_attempts times, then failed for good
        assert failed.status_code == 500, failed.text
        error = failed.json()["error"]
        assert error["code"] == "render_failed"
        assert "segment 1" in error["message"] and "model exploded" in error["message"]
        assert broken.attempts[1] == 2  # retried once after a backoff, then given up
        again = c.get(f"{base}/1.m4s")  # from the failure record: no new attempt
        assert again.status_code == 500 and again.json() == failed.json()
        assert broken.attempts[1] == 2
        assert c.get(f"{base}/2.m4s").status_code == 200  # the others are fine
        job = c.post(f"/api/renders/{r['id']}/exports", json={"format": "mp4"}).json()

        def over() -> bool:
            job.update(c.get(f"/api/exports/{job['id']}").json())
            return job["state"] in ("done", "failed")

        eventually(over, "the export to end", 60)
        assert job["state"] == "failed" and "model exploded" in job["error"]
        states = [s["state"] for s in c.get(f"/api/renders/{r['id']}").json()["segments"]]
        assert states[1] == "failed"
        assert c.get("/healthz").json()["ok"]


def test_a_transient_failure_is_retried_after_a_backoff(
    server: Running, clip: Path, flaky: _Failing
) -> None:
    asset = upload(server, clip)
    r = render(server, asset["id"], "flaky")
    with server.client() as c:
        ok = c.get(f"/api/renders/{r['id']}/composite/2.m4s")
    assert ok.status_code == 200 and flaky.attempts[2] == 2


def test_deleting_a_watched_asset_stops_nobody_else(
    server: Running, clip: Path, other_clip: Path
) -> None:
    doomed = render(server, upload(server, clip)["id"], "cost", ms_per_frame=5.0, mode="sleep")
    survivor_asset = upload(server, other_clip)
    survivor = render(server, survivor_asset["id"], "cost", ms_per_frame=5.0, mode="sleep")
    rt = runtime(server)
    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"type": "watch", "render": doomed["id"]}))
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": True, "rate": 1.0}))
        eventually(
            lambda: rt.planning.planner is not None and doomed["id"] in rt.planning.planner.renders,
            "the planner to know the watched render",
        )
        with server.client() as c:
            assert c.delete(f"/api/assets/{doomed['asset']}").status_code == 204
            assert c.get(f"/api/renders/{doomed['id']}").status_code == 404
            for k in range(3):  # planning goes on for everyone else
                assert c.get(f"/api/renders/{survivor['id']}/composite/{k}.m4s").status_code == 200
            ws.send(json.dumps({"type": "playhead", "frame": 30, "playing": True, "rate": 1.0}))
            assert c.get("/healthz").json()["ok"]
    planner = rt.planning.planner
    assert planner is not None and doomed["id"] not in planner.renders


def test_a_requests_need_ends_when_its_client_goes(server: Running, clip: Path) -> None:
    r = render(server, upload(server, clip)["id"], "cost", ms_per_frame=400.0, mode="sleep")
    rt = runtime(server)
    with pytest.raises(httpx.ReadTimeout):  # the client gives up while segment 2 renders
        httpx.get(f"{server.url}/api/renders/{r['id']}/composite/2.m4s", timeout=0.5)

    def marks() -> dict[int, float]:
        planner = rt.planning.planner
        state = planner.renders.get(r["id"]) if planner else None
        return dict(state.requested) if state else {}

    eventually(lambda: marks() == {}, "the request's mark to go with its client", timeout=10)


def test_watching_again_adds_no_listener_and_nothing_urgent(server: Running, clip: Path) -> None:
    r = render(server, upload(server, clip)["id"], "cost", ms_per_frame=1.0, mode="sleep")
    rt = runtime(server)
    with connect(server.ws_url) as ws:
        for _ in range(3):
            ws.send(json.dumps({"type": "watch", "render": r["id"]}))
        snapshots = 0
        seen: dict[tuple[int, str], int] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.get((0, "ready"), 0) == 0:
            msg = json.loads(ws.recv(timeout=30))
            if msg["type"] == "render":
                snapshots += 1
            elif msg["type"] == "segment":
                key = (msg["index"], msg["state"])
                seen[key] = seen.get(key, 0) + 1
        assert snapshots == 3 and seen.get((0, "ready")) == 1  # one listener, not three
        planner = rt.planning.planner
        assert planner is not None
        assert planner.renders[r["id"]].urgent == {}  # a watch is a paused viewer, not a seek
    assert priority_class(0.0) is Priority.URGENT


def test_results_do_not_depend_on_which_jobs_a_worker_ran_before(tmp_path: Path) -> None:
    """``person`` smooths across batches; that state must never cross into another render."""
    from playhead.catalog import Catalog
    from playhead.media.ingest import IngestOptions
    from playhead.mezzanines import MezzanineCache
    from playhead.renders import Render
    from playhead.store import LocalStore
    from playhead.worker.segment_job import SegmentJob, segment_payload, unpack_bands

    store = LocalStore(tmp_path)
    catalog = Catalog(store, MezzanineCache(store, tmp_path))
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for phase, path in enumerate(clips):
        make_barcode_video(path, 50, Fraction(25), (176, 144), phase=phase * 11)
    a, b = (catalog.ingest(path, IngestOptions()) for path in clips)
    ra = Render.create(a, "person", {"smoothing": 0.9})
    rb = Render.create(b, "person", {"smoothing": 0.9})
    for rr in (ra, rb):
        catalog.add_render(rr)

    def matte(order: list[tuple[Render, int]]) -> np.ndarray:
        job = SegmentJob(catalog, store, batch_size=8)  # one worker's warm runner
        for rr, k in order:
            store.delete_prefix(f"renders/{rr.id}/{k}/")
            job(segment_payload(rr, k), lambda: False)
        data = store.get(rb.bands_key(1))
        assert data is not None
        out: np.ndarray = unpack_bands(data)["matte"]
        return out

    alone = matte([(rb, 1)])
    after_a = matte([(ra, 0), (rb, 1)])  # a ends at frame 24; b's segment 1 starts at 25
    assert np.array_equal(after_a, alone)


def test_single_frames_from_many_threads_never_share_a_decoder(tmp_path: Path) -> None:
    """Threads asking for frames of more renders than the cache holds: none may close a
    decoder another is reading from."""
    from playhead.catalog import Catalog
    from playhead.media.ingest import IngestOptions
    from playhead.media.testsrc import read_barcode
    from playhead.mezzanines import MezzanineCache
    from playhead.renders import Render
    from playhead.server.frames import FrameService
    from playhead.store import LocalStore

    store = LocalStore(tmp_path)
    catalog = Catalog(store, MezzanineCache(store, tmp_path))
    renders = []
    for i in range(3):  # told apart by their width
        path = tmp_path / f"{i}.mp4"
        make_barcode_video(path, 40, Fraction(25), (96 + 32 * i, 64))
        r = Render.create(catalog.ingest(path, IngestOptions()), "passthrough", {})
        catalog.add_render(r)
        renders.append((r, 96 + 32 * i))
    frames = FrameService(catalog, capacity=1)
    errors: list[BaseException] = []

    def scrub(seed: int) -> None:
        try:
            for i in range(15):
                r, width = renders[(seed + i) % 3]
                n = (seed * 7 + i * 3) % 40
                image = frames.render_frame(r, n, "composite")
                assert image.shape[1] == width and read_barcode(image) == n
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=scrub, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    frames.close()
    assert not errors, errors
