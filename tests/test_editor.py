"""The browser editor in Debian's Chromium (Playwright), against a real server on a loopback port.

Reads what is really on screen: the WebGL canvas's pixels, the barcode each test frame carries,
the frame number the player reports, the segment requests the page makes. Prints the startup,
seek and stall figures the player measured. Set ``PLAYHEAD_SCREENSHOT=docs/editor.png`` to
refresh the README's screenshot.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Page, Request
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from playhead.media.testsrc import make_barcode_video, read_barcode
from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve
from playhead.server.routes import web
from playhead.server.runtime import Runtime

BLUE = (0x1E, 0x88, 0xE5)  # the editor's default background colour
MAGENTA = (0xFF, 0x00, 0xFF)


@dataclass
class Editor:
    server: Running
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        return cast(Runtime, cast(FastAPI, self.server.app).state.runtime)

    def dataset(self, name: str) -> str:
        return str(self.page.get_attribute("#player", f"data-{name}"))

    @property
    def frame(self) -> int:
        return int(self.dataset("frame"))

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.page.evaluate("window.__playheadStats")
        return stats

    def shown(self) -> tuple[int, np.ndarray]:
        """The frame number the player reports and the canvas, read in one go."""
        frame, url = self.page.evaluate(
            "[Number(document.querySelector('#player').dataset.frame),"
            " document.querySelector('#view').toDataURL('image/png')]"
        )
        png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)
        assert bgr is not None, "the canvas is not a PNG"
        return int(frame), np.ascontiguousarray(bgr[:, :, ::-1])

    def wait(self, condition: str, timeout_s: float = 30) -> None:
        try:
            self.page.wait_for_function(condition, timeout=timeout_s * 1000)
        except PlaywrightTimeoutError:
            state = self.page.evaluate(
                "({player: {...document.querySelector('#player').dataset},"
                " active: document.activeElement?.outerHTML.slice(0, 80),"
                " timeline: document.querySelector('#timeline').dataset.states,"
                " stats: window.__playheadStats})"
            )
            pytest.fail(f"waited {timeout_s} s for {condition}; the editor: {state}")

    def wait_frame(self, frame: int) -> None:
        self.wait(f"document.querySelector('#player').dataset.frame === '{frame}'")

    def open_clip(self, name: str, effect: str) -> None:
        self.page.get_by_role("button", name=name).first.click()
        self.page.select_option("#effect-select", effect)
        self.wait(
            f"(p => p.dataset.effect === '{effect}' && p.dataset.shown === p.dataset.render)"
            "(document.querySelector('#player'))"
        )

    def upload(self, path: Path) -> None:
        before = self.page.locator("#asset-list button.asset").count()
        self.page.set_input_files("#file-input", str(path))
        self.wait(f"document.querySelectorAll('#asset-list button.asset').length > {before}", 60)
        self.wait(  # the new clip is on screen
            "(p => p.dataset.render && p.dataset.shown === p.dataset.render)"
            "(document.querySelector('#player'))"
        )


@pytest.fixture(scope="module")
def editor(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    config = ServeConfig(data_dir=tmp_path_factory.mktemp("editor"), workers=2)
    with serve(config) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        editor = Editor(server, page)

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                editor.errors.append(f"console: {message.text}")

        def request(r: Request) -> None:
            editor.requests.append(r.url)

        page.on("console", console)
        page.on("pageerror", lambda e: editor.errors.append(f"page: {e}"))
        page.on("request", request)
        started = time.perf_counter()
        page.goto(server.url)
        editor.wait("document.querySelector('#connection').dataset.state === 'open'")
        print(f"\neditor ready in {1000 * (time.perf_counter() - started):.0f} ms")
        yield editor
        page.close()


@pytest.fixture(autouse=True)
def _no_console_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "editor" in request.fixturenames:
        editor: Editor = request.getfixturevalue("editor")
        assert editor.errors == [], "the browser console shows errors"


def _near(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    """Mean distance of a region's pixels to a colour (0 = exactly that colour)."""
    diff = pixels.reshape(-1, 3).astype(float) - np.array(colour, float)
    return float(np.linalg.norm(diff, axis=1).mean())


def _corners_and_person(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    top_left = image[: h // 10, : w // 10]
    top_right = image[: h // 10, -w // 10 :]
    person = image[int(h * 0.85) : int(h * 0.95), int(w * 0.45) : int(w * 0.55)]
    return top_left, top_right, person


def _settle(editor: Editor, quiet_s: float = 0.6) -> None:
    """Wait until the page has made no request for ``quiet_s`` (the player buffered enough)."""
    deadline = time.monotonic() + 20
    count, since = len(editor.requests), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the page never stops requesting"
        editor.page.wait_for_timeout(100)
        if len(editor.requests) != count:
            count, since = len(editor.requests), time.monotonic()


def _until(editor: Editor, ok: Callable[[np.ndarray], bool], timeout_s: float = 10) -> np.ndarray:
    """The canvas, once ``ok`` says it shows what it should."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, image = editor.shown()
        if ok(image):
            return image
        assert time.monotonic() < deadline, "the canvas never showed it"
        editor.page.wait_for_timeout(50)


def _shows_barcode(frame: int) -> Callable[[np.ndarray], bool]:
    return lambda image: read_barcode(image) == frame


def test_serves_the_editor_and_its_pinned_hls(editor: Editor) -> None:
    with editor.server.client() as c:
        index = c.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert '<script type="module" src="/js/main.js">' in index.text
        hls = c.get("/vendor/hls.mjs")
        assert hls.status_code == 200 and "javascript" in hls.headers["content-type"]
        assert '"1.7.4"' in hls.text, "the version pinned in web/package.json"
        assert c.get("/js/player.js").status_code == 200
        for bad in ("/node_modules/hls.js/package.json", "/%2e%2e/pyproject.toml", "/package.json"):
            r = c.get(bad)
            assert r.status_code == 404, bad
            assert r.json()["error"]["code"] == "not_found"
        assert c.get("/api/nothing").json()["error"]["message"] == "no API route /api/nothing"


def test_missing_hls_names_the_fix(editor: Editor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "HLS", web.WEB / "node_modules" / "missing.mjs")
    with editor.server.client() as c:
        r = c.get("/vendor/hls.mjs")
    assert r.status_code == 500
    assert "make setup" in r.json()["error"]["message"]


def test_a_dropped_non_video_shows_the_server_error(editor: Editor) -> None:
    editor.page.evaluate(
        """() => {
          const data = new DataTransfer();
          data.items.add(new File(["just some text"], "notes.txt", {type: "text/plain"}));
          document.querySelector('#dropzone').dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    editor.wait("document.querySelector('#upload-status').classList.contains('error')")
    status = editor.page.text_content("#upload-status") or ""
    assert status.startswith("notes.txt: ") and "not a media file" in status, status
    assert editor.page.locator("#asset-list button.asset").count() == 0
    # Chromium logs every HTTP error response itself; this one we provoked
    assert len(editor.errors) == 1 and "status of 415" in editor.errors[0], editor.errors
    editor.errors.clear()


def test_person_then_a_cold_seek_to_70_percent(editor: Editor, carphone_path: Path) -> None:
    page = editor.page
    editor.upload(carphone_path)
    editor.open_clip("carphone.mp4", "person")
    assert page.is_visible("#background"), "a matte effect offers browser-side backgrounds"
    render = editor.dataset("render")
    box = page.locator("#timeline").bounding_box()
    assert box is not None
    target = int(0.705 * 120)
    states = page.get_attribute("#timeline", "data-states")
    page.mouse.click(box["x"] + 0.705 * box["width"], box["y"] + box["height"] / 2)
    editor.wait_frame(target)
    editor.wait("window.__playheadStats.seekMs !== null")
    frame, image = editor.shown()
    assert frame == target
    top_left, top_right, person = _corners_and_person(image)
    assert _near(top_left, BLUE) < 25 and _near(top_right, BLUE) < 25, "background replaced"
    assert _near(person, BLUE) > 100, "the person (matte opaque) is drawn over the background"
    print(
        f"\nseek to 70 % right after choosing person (segments: {states}): "
        f"first processed frame after {editor.stats()['seekMs']} ms"
    )
    # the server knows where this viewer is, from the session WebSocket
    deadline = time.monotonic() + 5
    while not any(
        s.playhead == target and not s.playing for s in editor.runtime.viewers.sessions_of(render)
    ):
        assert time.monotonic() < deadline, f"no report of frame {target} reached the server"
        time.sleep(0.05)


def test_person_plays_processed_frames(editor: Editor) -> None:
    page = editor.page
    page.keyboard.press("Home")
    editor.wait_frame(0)
    page.keyboard.press("Space")
    editor.wait("Number(document.querySelector('#player').dataset.frame) >= 45")
    # reported over the WebSocket every 500 ms while playing: the next report passes frame 30
    deadline = time.monotonic() + 5
    while True:
        [session] = editor.runtime.viewers.sessions_of(editor.dataset("render"))
        if session.playhead >= 30 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert session.playing and session.rate == 1 and session.playhead >= 30
    if target := os.environ.get("PLAYHEAD_SCREENSHOT"):
        page.keyboard.press("h")
        page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
        page.wait_for_timeout(300)
        page.screenshot(path=target)
        page.keyboard.press("h")
        assert Path(target).stat().st_size < 300_000
    page.keyboard.press("Space")
    assert editor.dataset("playing") == "false"

    frame, image = editor.shown()
    top_left, top_right, person = _corners_and_person(image)
    assert _near(top_left, BLUE) < 25 and _near(top_right, BLUE) < 25, "background replaced"
    assert _near(person, BLUE) > 100, "the person (matte opaque) is drawn over the background"
    stats = editor.stats()
    print(
        f"\nstartup {stats['startupMs']} ms (first clip on screen), person on screen "
        f"{stats['switchMs']} ms after choosing it; playing to frame {frame}: "
        f"{stats['stalls']} stalls ({stats['stallMs']} ms)"
    )
    assert stats["startupMs"] is not None and stats["framesShown"] > 5


def test_changing_the_background_requests_nothing(editor: Editor) -> None:
    page = editor.page
    editor.wait(  # the timeline says every segment is ready and the player buffered them all
        "document.querySelector('#timeline').dataset.states.split(' ').every(s => s === 'ready')"
    )
    _settle(editor)
    before = len(editor.requests)
    page.fill("#bg-color", "#ff00ff")
    frame, image = editor.shown()
    top_left, top_right, person = _corners_and_person(image)
    assert _near(top_left, MAGENTA) < 25 and _near(top_right, MAGENTA) < 25
    assert _near(person, MAGENTA) > 100 and _near(person, BLUE) > 100
    page.check("input[name=bg][value=checkerboard]")
    _, checker = editor.shown()
    assert not np.array_equal(checker, image)
    page.check("input[name=bg][value=blur]")
    _, blurred = editor.shown()
    assert not np.array_equal(blurred, checker)
    page.check("input[name=bg][value=color]")
    page.wait_for_timeout(500)
    assert editor.requests[before:] == [], "a browser-side background must not touch the server"
    assert editor.frame == frame


def test_original_and_wipe_views_compare_with_the_source(editor: Editor) -> None:
    page = editor.page
    page.click("label[for=view-original]")
    image = _until(editor, lambda img: _near(_corners_and_person(img)[0], MAGENTA) > 100)
    assert _near(_corners_and_person(image)[1], MAGENTA) > 100, "the source, untouched"
    page.click("label[for=view-wipe]")
    assert page.is_visible("#wipe")
    image = _until(editor, lambda img: _near(_corners_and_person(img)[1], MAGENTA) < 25)
    top_left, _, _ = _corners_and_person(image)
    assert _near(top_left, MAGENTA) > 100, "left of the wipe: the source"
    page.locator("#wipe").fill("0")
    _, image = editor.shown()
    assert _near(_corners_and_person(image)[0], MAGENTA) < 25, "all processed"
    page.click("label[for=view-processed]")
    assert page.is_hidden("#wipe")


def test_a_param_change_continues_at_the_same_frame(editor: Editor) -> None:
    page = editor.page
    old = editor.dataset("render")
    frame = editor.frame
    page.locator("input[type=range][id^=param-threshold]").evaluate(
        "el => { el.value = '0.7'; el.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    editor.wait(
        f"(p => p.dataset.render !== '{old}' && p.dataset.shown === p.dataset.render)"
        "(document.querySelector('#player'))"
    )
    editor.wait_frame(frame)
    assert page.url.endswith("/"), "no reload"
    print(f"\nnew params on screen after {editor.stats()['switchMs']} ms")


def test_export_downloads_and_decodes(editor: Editor, tmp_path: Path) -> None:
    page = editor.page
    page.click("#export-open")
    page.select_option("#export-format", "mp4")
    page.click("#export-start")
    page.wait_for_selector("#export-link:not([hidden])", timeout=60_000)
    with page.expect_download() as info:
        page.click("#export-link")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    page.click("#export-close")
    assert path.suffix == ".mp4" and "person" in path.name
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 120
    top_left, _, person = _corners_and_person(frames[60])
    assert _near(top_left, MAGENTA) < 40, "the background shown in the editor is baked in"
    assert _near(person, MAGENTA) > 100


def test_frame_stepping_shows_the_frame_the_server_numbers(editor: Editor, tmp_path: Path) -> None:
    page = editor.page
    editor.upload(make_barcode_video(tmp_path / "barcode.mp4", 90, Fraction(30), (320, 240)))
    editor.open_clip("barcode.mp4", "passthrough")
    assert page.is_hidden("#background"), "no matte: no background to choose"

    def expect(frame: int) -> None:
        editor.wait_frame(frame)
        shown, image = editor.shown()
        assert (shown, read_barcode(image)) == (frame, frame)

    page.locator("#view").click()  # focus the page, not a control
    expect(0)
    for key, frame in [
        ("ArrowRight", 1), ("ArrowRight", 2), ("ArrowLeft", 1), ("Shift+ArrowRight", 31),
        ("ArrowLeft", 30), ("ArrowLeft", 29), ("ArrowRight", 30), ("End", 89),
        ("ArrowLeft", 88), ("Home", 0),
    ]:  # fmt: skip
        page.keyboard.press(key)
        expect(frame)

    # the source, followed frame by frame in the original view
    page.click("label[for=view-original]")
    page.locator("#view").click()
    for key, frame in [("ArrowRight", 1), ("ArrowRight", 2), ("ArrowLeft", 1)]:
        page.keyboard.press(key)
        editor.wait_frame(frame)
        _until(editor, _shows_barcode(frame))
    page.click("label[for=view-processed]")
    page.locator("#view").click()

    # shuttle: L plays forward, L again doubles, K stops, J runs backwards by stepping
    page.keyboard.press("l")
    for _ in range(5):  # while playing too, the number shown is the frame drawn
        page.wait_for_timeout(80)
        shown, image = editor.shown()
        assert read_barcode(image) == shown
    page.keyboard.press("l")
    assert editor.dataset("rate") == "2"
    editor.wait("Number(document.querySelector('#player').dataset.frame) >= 40")
    page.keyboard.press("k")
    assert editor.dataset("playing") == "false"
    stopped = editor.frame
    page.keyboard.press("j")
    editor.wait(f"Number(document.querySelector('#player').dataset.frame) <= {stopped - 5}")
    page.keyboard.press("k")
    page.wait_for_timeout(200)
    shown, image = editor.shown()
    assert read_barcode(image) == shown


def test_hud_shows_the_players_measurements(editor: Editor) -> None:
    page = editor.page
    page.keyboard.press("h")
    assert page.is_visible("#hud")
    page.wait_for_timeout(1200)  # a stats message from the server
    text = page.inner_text("#hud")
    for label in ("Buffer ahead", "Stalls", "Seek", "Server render", "Workers busy"):
        assert label in text
    stats = editor.stats()
    print(
        f"\nplayer: startup {stats['startupMs']} ms, last seek {stats['seekMs']} ms "
        f"(all: {stats['seekHistory']}), {stats['stalls']} stalls ({stats['stallMs']} ms), "
        f"{stats['droppedFrames']} dropped frames"
    )
    busy = page.text_content("#hud dd[data-key=busy]") or ""
    assert busy.endswith("% of 2"), f"worker busy ratio from the server's stats: {busy!r}"
    page.click("#hud-toggle")
    assert page.is_hidden("#hud")


def test_controls_are_labelled_and_fit_narrow_windows(editor: Editor) -> None:
    page = editor.page
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, [role=slider]')]
          .filter(el => el.offsetParent !== null && !el.classList.contains('visually-hidden'))
          .filter(el => !(el.getAttribute('aria-label') || el.labels?.length
                          || el.getAttribute('aria-labelledby') || el.textContent.trim()))
          .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    page.set_viewport_size({"width": 420, "height": 860})
    page.wait_for_timeout(200)
    width = page.evaluate("document.documentElement.scrollWidth")
    canvas = page.locator("#view").bounding_box()
    assert width <= 420 and canvas is not None and canvas["width"] > 300
    page.set_viewport_size({"width": 1280, "height": 720})


def test_delete_asks_twice_then_removes_the_clip(editor: Editor) -> None:
    page = editor.page
    delete = page.get_by_role("button", name="Delete barcode.mp4")
    delete.click()
    assert page.get_by_role("button", name="Really delete barcode.mp4? Press again").is_visible()
    page.get_by_role("button", name="Really delete barcode.mp4? Press again").click()
    editor.wait("document.querySelectorAll('#asset-list button.asset').length === 1")
    assert page.is_visible("#empty"), "the open clip was the one deleted"
    with editor.server.client() as c:
        assert [a["name"] for a in c.get("/api/assets").json()] == ["carphone.mp4"]
