"""Rotoscoping in the editor, in Debian's Chromium (Playwright) against a real server.

Clicks on the paused picture go to the real mask endpoint and the real ``roto`` effect; the
test reads what is on screen (the WebGL canvas's pixels, the point markers' canvas) and what
the page sends (the mask and render requests). The clip is generated: a red ellipse touching a
yellow square on grass, both moving right by one pixel a frame, so where the subject is on
every frame is known exactly. Each test opens a fresh page: the clicks, their undo history and
the view live in the page. Set ``PLAYHEAD_ROTO_SCREENSHOT=path.png`` to save the carphone
screenshot.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import pytest
from av.video.stream import VideoStream
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Position,
    Request,
    Response,
    Route,
)
from test_editor import Editor

from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve

W, H, FRAMES, FPS = 320, 192, 60, 30  # two segments of 30 frames
GRASS = (60, 150, 70)
RED = (210, 60, 50)
GREEN = (0, 255, 0)
TINT = (184, 92, 255)  # the overlay's tint (compositor.js)
INCLUDE, EXCLUDE = (0x2F, 0xBF, 0x71), (0xE5, 0x48, 0x4D)  # the point markers (roto.js)
ELLIPSE_AT = (100, 96)  # a click on the ellipse, frame 0 (its centre is at x = 120 + frame)
SQUARE_AT = (206, 96)  # a click on the square, frame 0


def ellipse(frame: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (120 + frame, 96), (56, 40), 0, 0, 360, 255, -1)
    return mask


def square(frame: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.rectangle(mask, (176 + frame, 70), (236 + frame, 122), 255, -1)
    return mask


def make_clip(path: Path) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream: VideoStream = out.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(FRAMES):
            rgb = np.clip(rng.normal(GRASS, 18, (H, W, 3)), 0, 255).astype(np.uint8)
            rgb[ellipse(i) > 0] = RED
            rgb[square(i) > 0] = (240, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@dataclass
class RotoEditor(Editor):
    posts: list[Request] = field(default_factory=list)  # the page's POST requests

    def sent(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies the page POSTed to URLs ending in ``path``."""
        return [cast(dict[str, Any], r.post_data_json) for r in self.posts if r.url.endswith(path)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, carphone_path: Path) -> Iterator[Running]:
    with serve(ServeConfig(data_dir=tmp_path_factory.mktemp("roto"), workers=2)) as running:
        clip = make_clip(tmp_path_factory.mktemp("clip") / "subject.mp4")
        for path in (clip, carphone_path):
            with running.client() as c, path.open("rb") as f:
                r = c.post("/api/assets", files={"file": (path.name, f, "video/mp4")})
            assert r.status_code == 201, r.text
        yield running


@pytest.fixture
def editor(browser: Browser, server: Running) -> Iterator[RotoEditor]:
    """A fresh page: no clicks, no history, the default views."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    editor = RotoEditor(server, page)

    def console(message: ConsoleMessage) -> None:
        # a segment still rendering is answered 503 after the server's hold, and hls.js asks
        # again: Chromium logs each one; roto renders take seconds a segment on a CPU
        if message.type == "error" and "status of 503" not in message.text:
            editor.errors.append(f"console: {message.text}")

    def request(r: Request) -> None:
        editor.requests.append(r.url)
        if r.method == "POST":
            editor.posts.append(r)

    page.on("console", console)
    page.on("pageerror", lambda e: editor.errors.append(f"page: {e}"))
    page.on("request", request)
    page.goto(server.url)
    editor.wait("document.querySelector('#connection').dataset.state === 'open'")
    yield editor
    assert editor.errors == [], "the browser console shows errors"
    page.close()


def same_clicks(points: list[dict[str, Any]], expected: list[tuple[float, float, int]]) -> bool:
    """The clicks sent are those made, to within the rounding of a CSS pixel."""
    return len(points) == len(expected) and all(
        abs(p["x"] - x) < 1 and abs(p["y"] - y) < 1 and p["label"] == label and len(p) == 3
        for p, (x, y, label) in zip(points, expected, strict=True)
    )


def open_roto(editor: RotoEditor, name: str) -> None:
    """Open clip ``name`` in roto mode, its first frame on screen (the source: no clicks yet)."""
    page = editor.page
    with editor.server.client() as c:
        [asset] = [a["id"] for a in c.get("/api/assets").json() if a["name"] == name]
    editor.wait("document.querySelectorAll('#asset-list button.asset').length === 2")
    page.locator("#asset-list button.asset", has_text=name).click()
    page.select_option("#effect-select", "roto")
    editor.wait(
        "!document.querySelector('#roto').hidden"
        f" && (p => p.dataset.asset === '{asset}' && p.dataset.shown === p.dataset.render"
        " && p.dataset.frame === '0')(document.querySelector('#player'))"
    )


def click(
    editor: RotoEditor, x: float, y: float, size: tuple[int, int] = (W, H), **kw: Any
) -> None:
    """Click the picture at frame pixel (x, y)."""
    box = editor.page.locator("#view").bounding_box()
    assert box is not None
    position: Position = {"x": x / size[0] * box["width"], "y": y / size[1] * box["height"]}
    editor.page.locator("#view").click(position=position, **kw)


def wait_mask(editor: RotoEditor, points: int) -> None:
    """Until the mask of the frame's clicks (``points`` of them) is on screen."""
    editor.wait(
        f"(r => r.dataset.mask === 'shown' && r.dataset.maskPoints === '{points}')"
        "(document.querySelector('#roto'))"
    )


def view(editor: RotoEditor, matte_view: str) -> np.ndarray:
    """The canvas in a matte view, scaled to frame pixels."""
    editor.page.click(f"label[for=matte-{matte_view}]")
    _, image = editor.shown()
    return cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)


def selected(image: np.ndarray) -> np.ndarray:
    """What the mask view shows as selected (white)."""
    return np.where(image.mean(axis=2) > 127, 255, 0).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum()))


def near(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    """Mean distance of a region's pixels to a colour (0 = exactly that colour)."""
    diff = pixels.reshape(-1, 3).astype(float) - np.array(colour, float)
    return float(np.linalg.norm(diff, axis=1).mean())


def region(image: np.ndarray, x: int, y: int, r: int = 6) -> np.ndarray:
    return image[y - r : y + r, x - r : x + r]


def corners(image: np.ndarray) -> list[np.ndarray]:
    return [image[:16, :16], image[:16, -16:], image[-16:, :16], image[-16:, -16:]]


def marker(editor: RotoEditor, x: float, y: float, colour: tuple[int, int, int]) -> bool:
    """Whether the point markers' canvas shows a marker of ``colour`` at frame pixel (x, y)."""
    url = editor.page.evaluate("document.querySelector('#roto-marks').toDataURL('image/png')")
    png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    marks = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
    assert marks is not None and marks.shape[2] == 4
    cx, cy = int(x / W * marks.shape[1]), int(y / H * marks.shape[0])
    around = marks[cy - 8 : cy + 8, cx - 8 : cx + 8]
    opaque = around[around[:, :, 3] == 255][:, 2::-1]  # BGRA to RGB
    distance = np.linalg.norm(opaque.astype(float) - np.array(colour, float), axis=1)
    return bool((distance < 30).sum() > 20)


def record_states(editor: RotoEditor) -> None:
    """From now on, window.__roto lists every mask state and progress text the panel shows."""
    editor.page.evaluate(
        """() => {
          const roto = document.querySelector('#roto');
          const busy = document.querySelector('#roto-busy');
          window.__roto = [];
          const note = () => {
            window.__roto.push(`${roto.dataset.mask}:${roto.dataset.maskPoints}`);
            if (!busy.hidden) window.__roto.push(busy.textContent.trim());
          };
          const all = {attributes: true, childList: true, subtree: true, characterData: true};
          new MutationObserver(note).observe(roto, {attributes: true});
          new MutationObserver(note).observe(busy, all);
        }"""
    )


def test_a_click_shows_the_subjects_mask_over_the_paused_frame(editor: RotoEditor) -> None:
    page = editor.page
    open_roto(editor, "subject.mp4")
    keys = page.eval_on_selector_all("#params .field", "els => els.map(e => e.dataset.key)")
    assert "prompts" not in keys and {"every", "feather"} <= set(keys), keys
    assert page.is_visible("#background"), "the composite view's background, before any apply"
    record_states(editor)
    started = time.perf_counter()
    click(editor, *ELLIPSE_AT)
    wait_mask(editor, 1)
    print(f"\nfirst mask on screen {1000 * (time.perf_counter() - started):.0f} ms after the click")
    seen: list[str] = page.evaluate("window.__roto")
    assert "Analysing frame 0…" in seen, f"no progress while the frame was analysed: {seen}"
    assert page.is_hidden("#roto-busy")
    [sent] = editor.sent("/frames/0/mask")
    assert sent.keys() == {"points"} and same_clicks(sent["points"], [(*ELLIPSE_AT, 1)])

    # the mask view: the subject the click touches (the ellipse and the square it touches)
    mask = selected(view(editor, "mask"))
    assert iou(mask, ellipse(0) | square(0)) > 0.85
    # the overlay: the subject tinted, the rest untouched, an include marker at the click
    overlay = view(editor, "overlay")
    assert near(region(overlay, 120, 96), tuple((np.add(RED, TINT) / 2).astype(int))) < 40
    assert all(near(c, GRASS) < 45 for c in corners(overlay))
    assert marker(editor, *ELLIPSE_AT, INCLUDE), "a green include marker where the click was"
    assert page.get_attribute("#timeline", "data-marks") == "0"
    assert "Frame 0" in (page.text_content("#roto-frames") or "")
    assert page.is_enabled("#roto-apply")


def test_exclude_clicks_refine_the_mask_and_undo_restores_it(editor: RotoEditor) -> None:
    page = editor.page
    open_roto(editor, "subject.mp4")
    page.click("label[for=matte-mask]")
    click(editor, *ELLIPSE_AT)
    wait_mask(editor, 1)
    _, both = editor.shown()

    def shows_ellipse_only() -> None:
        mask = selected(view(editor, "mask"))
        assert iou(mask, ellipse(0)) > 0.85 and (mask[square(0) > 0] > 0).mean() < 0.05

    click(editor, *SQUARE_AT, modifiers=["Alt"])
    wait_mask(editor, 2)
    shows_ellipse_only()
    assert marker(editor, *SQUARE_AT, EXCLUDE), "a red exclude marker"
    assert same_clicks(
        editor.sent("/frames/0/mask")[-1]["points"], [(*ELLIPSE_AT, 1), (*SQUARE_AT, 0)]
    )

    page.keyboard.press("Control+z")
    wait_mask(editor, 1)
    assert np.array_equal(editor.shown()[1], both), "undo shows the previous mask again"
    page.keyboard.press("Control+Shift+z")
    wait_mask(editor, 2)
    shows_ellipse_only()
    page.click("#roto-undo")
    wait_mask(editor, 1)

    click(editor, *SQUARE_AT, button="right")  # right-click excludes too
    wait_mask(editor, 2)
    shows_ellipse_only()
    page.click("#roto-undo")
    wait_mask(editor, 1)
    page.keyboard.press("x")  # the include/exclude toggle
    assert page.is_checked("#roto-exclude")
    click(editor, *SQUARE_AT)
    wait_mask(editor, 2)
    shows_ellipse_only()
    assert [p["label"] for p in editor.sent("/frames/0/mask")[-1]["points"]] == [1, 0]

    page.click("#roto-clear")
    editor.wait("document.querySelector('#roto').dataset.mask === 'none'")
    assert page.get_attribute("#timeline", "data-marks") == ""
    assert page.is_disabled("#roto-apply")
    page.click("#roto-undo")
    wait_mask(editor, 2)
    assert page.get_attribute("#timeline", "data-marks") == "0"


def test_a_late_answer_never_replaces_the_mask_of_newer_clicks(editor: RotoEditor) -> None:
    page = editor.page
    open_roto(editor, "subject.mp4")
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/frames/*/mask", hold_the_first)
    record_states(editor)
    click(editor, *ELLIPSE_AT)
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the click asked for no mask"
        page.wait_for_timeout(20)
    click(editor, *SQUARE_AT, modifiers=["Alt"])  # while the first answer is on its way
    assert page.get_attribute("#roto", "data-mask") == "pending"
    held[0].continue_()
    wait_mask(editor, 2)
    mask = selected(view(editor, "mask"))
    assert iou(mask, ellipse(0)) > 0.85, "the mask of both clicks"
    seen: list[str] = page.evaluate("window.__roto")
    assert "shown:1" not in seen, f"the first click's late answer was shown: {seen}"
    assert [len(b["points"]) for b in editor.sent("/frames/0/mask")] == [1, 2]


def test_a_drag_draws_a_box_around_the_subject(editor: RotoEditor) -> None:
    page = editor.page
    open_roto(editor, "subject.mp4")
    box = page.locator("#view").bounding_box()
    assert box is not None

    def to_page(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x / W * box["width"], box["y"] + y / H * box["height"]

    page.mouse.move(*to_page(60, 50))
    page.mouse.down()
    page.mouse.move(*to_page(150, 100), steps=4)
    page.mouse.move(*to_page(245, 142), steps=4)
    page.mouse.up()
    wait_mask(editor, 0)
    [sent] = editor.sent("/frames/0/mask")
    assert sent["points"] == [] and np.allclose(sent["box"], [60, 50, 245, 142], atol=1)
    assert iou(selected(view(editor, "mask")), ellipse(0) | square(0)) > 0.85
    click(editor, *SQUARE_AT, modifiers=["Alt"])  # a box and an exclude click
    wait_mask(editor, 1)
    assert iou(selected(view(editor, "mask")), ellipse(0)) > 0.85


def apply(editor: RotoEditor) -> dict[str, Any]:
    """Press "Apply to video"; the render request's body, once that render is on screen."""
    page = editor.page

    def roto_render(r: Response) -> bool:
        return r.url.endswith("/api/renders") and '"effect":"roto"' in (r.request.post_data or "")

    with page.expect_response(roto_render) as info:
        page.click("#roto-apply")
    assert info.value.status == 201, info.value.text()
    render = info.value.json()["id"]
    editor.wait(
        f"(p => p.dataset.render === '{render}' && p.dataset.shown === p.dataset.render)"
        "(document.querySelector('#player'))",
        180,
    )
    return cast(dict[str, Any], info.value.request.post_data_json)


def annotate_frame_0(editor: RotoEditor) -> None:
    """Roto on the clip, re-segmenting rarely (fast on a CPU), over green, frame 0 clicked."""
    page = editor.page
    open_roto(editor, "subject.mp4")
    page.locator("#params input[type=range][id^=param-every]").evaluate(
        "el => { el.value = '30'; el.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    page.fill("#bg-color", "#00ff00")
    page.evaluate("document.activeElement.blur()")
    click(editor, *ELLIPSE_AT)
    click(editor, *SQUARE_AT, modifiers=["Alt"])
    wait_mask(editor, 2)


def test_apply_renders_the_clicks_through_the_video(editor: RotoEditor) -> None:
    page = editor.page
    annotate_frame_0(editor)
    started = time.perf_counter()
    body = apply(editor)
    assert body["params"]["every"] == 30
    [prompt] = body["params"]["prompts"]
    assert prompt.keys() == {"frame", "points"} and prompt["frame"] == 0
    assert same_clicks(prompt["points"], [(*ELLIPSE_AT, 1), (*SQUARE_AT, 0)])
    assert page.is_checked("#matte-composite"), "after apply: the result, over the background"
    assert page.is_disabled("#roto-apply") and page.get_attribute("#roto", "data-applied") == "true"
    # the timeline follows the roto render's segments until both are ready
    editor.wait(
        "document.querySelector('#timeline').dataset.states === 'ready ready'"
        " && document.querySelector('#timeline').dataset.marks === '0'",
        180,
    )
    print(f"\nroto render of 2 segments ready {time.perf_counter() - started:.1f} s after apply")

    def composited(frame: int) -> None:
        image = cv2.resize(editor.shown()[1], (W, H), interpolation=cv2.INTER_AREA)
        assert all(near(c, GREEN) < 30 for c in corners(image)), f"frame {frame}: green around"
        assert near(region(image, 120 + frame, 96), RED) < 40, f"frame {frame}: the ellipse"
        assert near(region(image, 222 + frame, 96), GREEN) < 40, f"frame {frame}: no square"

    composited(0)
    page.keyboard.press("Shift+ArrowRight")  # a second on: the other segment, tracked there
    editor.wait_frame(30)
    composited(30)
    page.keyboard.press("Home")
    editor.wait_frame(0)
    page.keyboard.press("Space")
    editor.wait("Number(document.querySelector('#player').dataset.frame) >= 40")
    page.keyboard.press("Space")
    editor.wait("document.querySelector('#player').dataset.playing === 'false'")
    frame, _ = editor.shown()
    composited(frame)


def test_a_correction_on_another_frame_makes_a_new_render(editor: RotoEditor) -> None:
    page = editor.page
    annotate_frame_0(editor)
    first = apply(editor)
    first_render = editor.dataset("render")
    page.keyboard.press("Shift+ArrowRight")
    editor.wait_frame(30)
    click(editor, ELLIPSE_AT[0] + 30, ELLIPSE_AT[1])
    click(editor, SQUARE_AT[0] + 30, SQUARE_AT[1], modifiers=["Alt"])
    wait_mask(editor, 2)  # the clicks' mask, not the render's, until they are applied
    mask = selected(view(editor, "mask"))
    assert iou(mask, ellipse(30)) > 0.85
    editor.wait("document.querySelector('#timeline').dataset.marks === '0 30'")
    assert "not applied" in (page.text_content("#roto-frames button[data-frame='30']") or "")

    second = apply(editor)
    assert [p["frame"] for p in second["params"]["prompts"]] == [0, 30]
    assert second["params"]["prompts"][0] == first["params"]["prompts"][0]
    assert same_clicks(second["params"]["prompts"][1]["points"], [(130, 96, 1), (236, 96, 0)])
    assert editor.dataset("render") != first_render

    page.click("#roto-clear")  # the correction goes: back to the first render, from the cache
    editor.wait("document.querySelector('#timeline').dataset.marks === '0'")
    third = apply(editor)
    assert third["params"]["prompts"] == first["params"]["prompts"]
    assert editor.dataset("render") == first_render


def test_controls_are_labelled_and_keyboard_reachable(editor: RotoEditor) -> None:
    page = editor.page
    open_roto(editor, "subject.mp4")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#roto button, #roto input')]
          .filter(el => !(el.getAttribute('aria-label') || el.labels?.length
                          || el.getAttribute('aria-labelledby') || el.textContent.trim()))
          .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    page.keyboard.press("m")  # the matte views, in turn
    assert page.is_checked("#matte-composite")
    page.keyboard.press("m")
    assert page.is_checked("#matte-mask")
    # Tab reaches the roto controls from the effect picker
    page.focus("#effect-select")
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.name || document.activeElement.id"))
    assert {"roto-label", "matte-view"} <= reached, reached


def test_the_person_in_carphone(editor: RotoEditor) -> None:
    page = editor.page
    size = (176, 144)
    open_roto(editor, "carphone.mp4")
    click(editor, 85, 60, size)  # the face
    wait_mask(editor, 1)
    click(editor, 90, 125, size)  # and the suit
    wait_mask(editor, 2)
    page.click("label[for=matte-mask]")
    _, image = editor.shown()
    mask = selected(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    h, w = mask.shape
    assert (mask[int(h * 0.85) : int(h * 0.95), int(w * 0.45) : int(w * 0.55)] > 0).mean() > 0.9
    assert (mask[50:70, 75:95] > 0).mean() > 0.9, "the face"
    assert all((c == 0).all() for c in corners(mask)), "not the car"
    page.click("label[for=matte-overlay]")
    if target := os.environ.get("PLAYHEAD_ROTO_SCREENSHOT"):
        page.evaluate("document.activeElement.blur()")
        page.screenshot(path=target)
