"""The server on a real loopback port: uploads, renders, HLS read by FFmpeg, sessions, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest
from waiting import eventually
from websockets.sync.client import connect

from playhead.effects import devices
from playhead.media.ingest import IngestOptions
from playhead.media.probe import Limits
from playhead.media.testsrc import make_barcode_video, read_barcode
from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("serve")
    limits = Limits(max_bytes=5_000_000)
    config = ServeConfig(data_dir=data, workers=2, ingest=IngestOptions(limits=limits))
    with serve(config) as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "barcode.mp4"
    return make_barcode_video(path, 75, Fraction(25), (192, 144))


@pytest.fixture(scope="module")
def asset(server: Running, clip: Path) -> dict[str, Any]:
    with server.client() as c, clip.open("rb") as f:
        r = c.post("/api/assets", files={"file": ("barcode.mp4", f, "video/mp4")})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _render(server: Running, asset_id: str, effect: str, **params: Any) -> dict[str, Any]:
    with server.client() as c:
        r = c.post("/api/renders", json={"asset": asset_id, "effect": effect, "params": params})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _read_hls(url: str) -> list[tuple[int, Fraction]]:
    """Every frame an FFmpeg HLS client decodes: (barcode, presentation time)."""
    out = []
    with av.open(url, options={"http_persistent": "0"}) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            out.append(
                (read_barcode(frame.to_ndarray(format="rgb24")), frame.pts * frame.time_base)
            )
    return out


def test_health_and_effects(server: Running) -> None:
    with server.client() as c:
        assert c.get("/healthz").json()["ok"] is True
        effects = {e["name"]: e for e in c.get("/api/effects").json()}
    assert {"person", "faces", "edges", "flow", "onnx", "passthrough", "cost"} <= set(effects)
    assert effects["person"]["variants"] == ["composite", "stacked"]
    assert "threshold" in effects["person"]["params"]["properties"]


def test_the_embedded_server_publishes_its_demand_for_workers(server: Running) -> None:
    """One process is a fleet of one device class (this machine's): the planner publishes its
    demand as a fleet's does, for /api/fleet and /metrics."""
    answers: list[dict[str, Any]] = []

    def published() -> bool:
        with server.client() as c:
            r = c.get("/api/fleet")
        if r.status_code == 200:
            answers.append(r.json())
        return bool(answers)

    eventually(published, "the planner's first published demand")
    here = devices.current().klass
    assert list(answers[0]["classes"]) == [here]
    assert answers[0]["classes"][here]["workers"] >= 1  # the in-process workers
    with server.client() as c:
        assert f'playhead_desired_workers{{device="{here}"}}' in c.get("/metrics").text


def test_upload_describes_the_asset(server: Running, asset: dict[str, Any]) -> None:
    assert asset["frames"] == 75 and asset["fps"] == 25.0
    assert (asset["width"], asset["height"]) == (192, 144)
    assert asset["name"] == "barcode.mp4" and asset["duration"] == 3.0
    with server.client() as c:
        assert c.get(f"/api/assets/{asset['id']}").json()["id"] == asset["id"]
        assert asset["id"] in [a["id"] for a in c.get("/api/assets").json()]


def test_hls_client_reads_every_frame_in_order(server: Running, asset: dict[str, Any]) -> None:
    render = _render(server, asset["id"], "passthrough")
    assert render["segments"] == 3 and render["fps"] == 25.0
    frames = _read_hls(server.url + render["playlists"]["composite"])
    assert [code for code, _ in frames] == list(range(75))
    assert [t for _, t in frames] == [Fraction(i, 25) for i in range(75)]
    with server.client() as c:
        states = c.get(f"/api/renders/{render['id']}").json()["segments"]
    assert [s["state"] for s in states] == ["ready"] * 3


def test_cached_segments_have_headers_and_ranges(server: Running, asset: dict[str, Any]) -> None:
    render = _render(server, asset["id"], "passthrough")
    base = f"/api/renders/{render['id']}/composite"
    with server.client() as c:
        whole = c.get(f"{base}/1.m4s")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "video/iso.segment"
        assert int(whole.headers["content-length"]) == len(whole.content)
        assert "immutable" in whole.headers["cache-control"]
        part = c.get(f"{base}/1.m4s", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == whole.content[:100]
        init = c.get(f"{base}/init.mp4")
        assert init.status_code == 200 and init.content[4:8] == b"ftyp"
        playlist = c.get(f"{base}/index.m3u8").text
    assert '#EXT-X-MAP:URI="init.mp4"' in playlist and playlist.count("#EXTINF:1.000000,") == 3


def test_source_is_served_as_hls(server: Running, asset: dict[str, Any]) -> None:
    frames = _read_hls(f"{server.url}/api/assets/{asset['id']}/index.m3u8")
    assert [code for code, _ in frames] == list(range(75))


def test_eight_simultaneous_readers(server: Running, asset: dict[str, Any]) -> None:
    renders = [_render(server, asset["id"], "cost", ms_per_frame=float(i)) for i in range(8)]
    assert len({r["id"] for r in renders}) == 8
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def read(i: int) -> None:
        try:
            url = server.url + renders[i]["playlists"]["composite"]
            results[i] = [code for code, _ in _read_hls(url)]
        except BaseException as e:  # reported below, with the others
            errors.append(e)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not errors, errors
    assert all(results[i] == list(range(75)) for i in range(8))


def test_single_frame_png(server: Running, asset: dict[str, Any]) -> None:
    render = _render(server, asset["id"], "passthrough")
    with server.client() as c:
        r = c.get(f"/api/renders/{render['id']}/frames/42.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and read_barcode(image[..., ::-1]) == 42


def test_session_seek_is_served_first(server: Running, asset: dict[str, Any]) -> None:
    render = _render(server, asset["id"], "cost", ms_per_frame=30.0)
    frames = render["frames"]
    target = int(frames * 0.8)
    k = target // render["segment_frames"]
    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"type": "watch", "render": render["id"]}))
        snapshot = _next(ws, "render")
        assert len(snapshot["segments"]) == render["segments"]
        ws.send(json.dumps({"type": "playhead", "frame": 0, "playing": True, "rate": 1.0}))
        sent = time.perf_counter()
        ws.send(json.dumps({"type": "playhead", "frame": target, "playing": True, "rate": 1.0}))
        while True:
            msg = _next(ws, "segment")
            if msg["index"] == k and msg["state"] == "ready":
                break
        seek_s = time.perf_counter() - sent
    print(f"\nseek to 80 % → segment {k} ready in {seek_s * 1000:.0f} ms")
    assert seek_s < 30


def _next(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=60))
        if msg["type"] == kind:
            return msg


def test_malformed_websocket_messages_get_errors(server: Running, asset: dict[str, Any]) -> None:
    with connect(server.ws_url) as ws:
        for bad in ["{not json", json.dumps({"type": "dance"}), json.dumps({"type": "playhead"})]:
            ws.send(bad)
            assert _next(ws, "error")["message"]
        ws.send(json.dumps({"type": "watch", "render": "nope"}))
        assert "no render" in _next(ws, "error")["message"]
    with server.client() as c:
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("notes.mp4", b"this is not a video", 415, "invalid_media"),
        ("notes.txt", b"Shot list: the harbour, then the interview.\n" * 30, 415, "invalid_media"),
        ("big.mp4", b"\0" * 6_000_000, 413, "media_too_large"),
    ],
)
def test_bad_uploads(server: Running, name: str, content: bytes, status: int, code: str) -> None:
    with server.client() as c:
        r = c.post("/api/assets", files={"file": (name, content, "video/mp4")})
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code
        assert c.get("/healthz").status_code == 200


def test_bad_requests(server: Running, asset: dict[str, Any]) -> None:
    with server.client() as c:
        r = c.post("/api/assets", content=b"plain body")
        assert r.status_code == 400
        r = c.post("/api/renders", json={"asset": asset["id"], "effect": "sparkles"})
        assert r.status_code == 422 and "sparkles" in r.json()["error"]["message"]
        r = c.post(
            "/api/renders",
            json={"asset": asset["id"], "effect": "person", "params": {"threshold": 7}},
        )
        assert r.status_code == 422 and "threshold" in r.json()["error"]["message"]
        r = c.post("/api/renders", json={"asset": "nope", "effect": "person"})
        assert r.status_code == 404
        render = _render(server, asset["id"], "passthrough")
        assert c.get(f"/api/renders/{render['id']}/composite/99.m4s").status_code == 404
        assert c.get(f"/api/renders/{render['id']}/stacked/index.m3u8").status_code == 404
        assert c.get("/api/renders/nope").status_code == 404
        assert c.get("/healthz").status_code == 200


def test_metrics(server: Running, asset: dict[str, Any]) -> None:
    _read_hls(server.url + _render(server, asset["id"], "passthrough")["playlists"]["composite"])
    text = httpx.get(server.url + "/metrics").text
    for name in (
        "playhead_segment_render_seconds_bucket",
        "playhead_queue_wait_seconds",
        "playhead_deadline_misses_total",
        "playhead_segment_lead_seconds",
        "playhead_jobs",
        "playhead_cache_requests_total",
        "playhead_worker_busy_ratio",
    ):
        assert name in text


def _export(server: Running, render_id: str, fmt: str, dest: Path) -> Path:
    with server.client() as c:
        r = c.post(f"/api/renders/{render_id}/exports", json={"format": fmt})
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.monotonic() + 120
        while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = c.get(f"/api/exports/{job['id']}").json()
        assert job["state"] == "done", job
        assert 0 <= job["progress"] <= 1
        file = c.get(job["file"])
    assert file.status_code == 200
    assert "attachment" in file.headers["content-disposition"]
    dest.write_bytes(file.content)
    return dest


def test_export_mp4_reuses_cached_segments(
    server: Running, asset: dict[str, Any], tmp_path: Path
) -> None:
    render = _render(server, asset["id"], "passthrough")
    _read_hls(server.url + render["playlists"]["composite"])  # watched: every segment cached
    path = _export(server, render["id"], "mp4", tmp_path / "out.mp4")
    with av.open(str(path)) as c:
        codes = [read_barcode(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    assert codes == list(range(75))


def test_export_alpha_and_matte(server: Running, asset: dict[str, Any], tmp_path: Path) -> None:
    render = _render(server, asset["id"], "edges", background="source")
    webm = _export(server, render["id"], "webm-alpha", tmp_path / "out.webm")
    with av.open(str(webm)) as c:
        stream = c.streams.video[0]
        ctx: Any = av.codec.CodecContext.create("libvpx-vp9", "r")
        frames = [f for p in c.demux(stream) for f in ctx.decode(p)]
    assert len(frames) == 75 and frames[0].format.name == "yuva420p"
    zipped = _export(server, render["id"], "png-matte", tmp_path / "matte.zip")
    import zipfile

    with zipfile.ZipFile(zipped) as z:
        assert len(z.namelist()) == 75
    with server.client() as c:
        r = c.post(
            f"/api/renders/{_render(server, asset['id'], 'passthrough')['id']}/exports",
            json={"format": "png-matte"},
        )
        assert r.status_code == 422
        r = c.post(f"/api/renders/{render['id']}/exports", json={"format": "gif"})
        assert r.status_code == 422
