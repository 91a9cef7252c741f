"""Synthetic video-object-segmentation sequences with exact ground truth (scored by
`playhead.bench.roto_scores`).

A rotoscoping benchmark needs a true mask for every frame. Hand-labelled sets (DAVIS) can't be
fetched here and carry their annotators' errors, so we make the videos: a cut-out of a real
photo moves over a panning crop of another photo. The cut-out's alpha is ours, so the ground
truth is exact by construction: a pixel is the object's when the object's *visible* alpha
(after anything in front of it), averaged over the exposure, is at least 0.5 — the same alpha
the frame was composited with, including its feathered edge and its motion blur.

Kinds, one sequence each per seed:

- ``affine``: the object translates, rotates and scales, fast enough in places to blur.
- ``nonrigid``: the cut-out bends under a smooth elastic warp that changes over time.
- ``distractor``: a second cut-out of the same photo (so of similar colours) passes *behind*
  the object, touching and overlapping it mid-sequence.
- ``occluder``: an opaque textured bar sweeps across the frame *in front of* the object, then
  leaves; ``Sequence.occluded`` says in which frames it hides part of the object.

The photos are scikit-image's sample images, taken out of its wheel on PyPI and pinned by
sha256 (scikit-image itself is never installed). Objects: the cat's face (``chelsea.png``, an
elliptical cut), the espresso cup on its saucer (``coffee.png``, two ellipses), a horse
(``horse.png``'s silhouette, textured with ``chelsea.png``), a coin (``coins.png``, one coin
thresholded off its flat dark background). Backgrounds: ``motorcycle_left.png``,
``astronaut.png`` and the tinted textures ``gravel.png``, ``grass.png``, ``brick.png`` (one of
which also textures the occluder bar).

"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from playhead import paths, wheels
from playhead.errors import FetchError
from playhead.wheels import Pinned

WHEEL = "scikit-image==0.25.2"
_SHA256 = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "horse.png": "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
}
IMAGES: dict[str, Pinned] = {
    name: Pinned(f"skimage/data/{name}", sha) for name, sha in _SHA256.items()
}

KINDS = ("affine", "nonrigid", "distractor", "occluder")
OBJECTS = ("cat", "cup", "horse", "coin")
BACKGROUNDS = ("motorcycle_left.png", "astronaut.png", "gravel.png", "grass.png", "brick.png")
FPS = 30.0
SHUTTER = 0.5  # exposure, as a fraction of the frame interval (a 180° shutter)
BLUR_STEP_PX = 1.5  # one sub-frame render per this much motion during the exposure
MAX_SUBFRAMES = 24  # enough for the fastest frames (~35 px) to blur without visible steps

# each object's longer side, as a fraction of the frame's height
_SIDE = {"cat": 0.42, "cup": 0.45, "horse": 0.6, "coin": 0.34}

# grey textures get a colour, so that a background is not told apart by saturation alone
_TINTS = {
    "gravel.png": (1.0, 0.93, 0.8),
    "grass.png": (0.62, 0.85, 0.45),
    "brick.png": (0.95, 0.6, 0.5),
}


@dataclass(frozen=True, eq=False)
class Sequence:
    name: str  # "{kind}-{object}-s{seed}", e.g. "occluder-coin-s0"
    frames: np.ndarray  # uint8 [T, H, W, 3], RGB
    masks: np.ndarray  # bool [T, H, W]: exact ground truth of the visible target
    fps: float
    # bool [T]: frames in which the occluder hides part of the target; None: no occluder
    occluded: np.ndarray | None = None


def fetch_images(root: Path | None = None) -> dict[str, Path]:
    """The suite's photos, downloaded once (one wheel, ~15 MB) and verified by sha256."""
    root = root or paths.samples_dir() / "skimage"
    wheels.extract(WHEEL, {root / name: pin for name, pin in IMAGES.items()})
    return {name: root / name for name in IMAGES}


def suite(
    seeds: Iterable[int] = (0, 1, 2), frames: int = 48, size: tuple[int, int] = (360, 640)
) -> list[Sequence]:
    """One sequence of each kind in `KINDS` per seed, ``frames`` long, ``size`` = (height,
    width). The same seeds give the same pixels; each (seed, kind) has its own random stream,
    object (`OBJECTS`, rotating with the seed) and background (`BACKGROUNDS`)."""
    if frames < 2:
        raise ValueError("a sequence needs at least 2 frames")
    files = fetch_images()
    out = []
    for seed in seeds:
        for k, kind in enumerate(KINDS):
            rng = np.random.default_rng([seed, k])
            obj = OBJECTS[(seed + k) % len(OBJECTS)]
            background = BACKGROUNDS[(seed + k) % len(BACKGROUNDS)]
            scene = _scene(kind, obj, background, files, rng, frames, size)
            video, masks, hidden = _film(scene, frames)
            out.append(
                Sequence(
                    name=f"{kind}-{obj}-s{seed}",
                    frames=video,
                    masks=masks,
                    fps=FPS,
                    occluded=hidden if kind == "occluder" else None,
                )
            )
    return out


# --- photos and cut-outs ----------------------------------------------------------------------


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise FetchError(f"could not read {path}")
    return np.asarray(img)


@cache
def _photo(path: Path) -> np.ndarray:
    """RGB float32, grey images as three equal channels; read-only (it is shared)."""
    rgb = cv2.cvtColor(_read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)
    if path.name in _TINTS:
        rgb *= np.array(_TINTS[path.name], np.float32)
    rgb.flags.writeable = False
    return rgb


def _ellipses(shape: tuple[int, int], *ellipses: tuple[float, float, float, float]) -> np.ndarray:
    """Coverage (0 or 1, float32) of the union of axis-aligned ellipses (cx, cy, ax, ay)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    inside = np.zeros(shape, bool)
    for cx, cy, ax, ay in ellipses:
        inside |= ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    return inside.astype(np.float32)


def _cutout(photo: np.ndarray, coverage: np.ndarray, side: float, feather: float) -> np.ndarray:
    """Premultiplied RGBA float32 patch: ``photo`` seen through ``coverage`` (0..1 on the
    photo's grid), scaled so the shape's longer side is ``side`` frame pixels, the shape
    centred, with room around it for warps, and its edge feathered by a Gaussian blur."""
    ys, xs = np.nonzero(coverage >= 0.5)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    scale = side / max(y1 - y0, x1 - x0)
    m = math.ceil((0.2 * side + 4 * feather + 2) / scale)
    # the fringe the feather lets through shows the photo around the shape, as a real edge would
    rgb = cv2.copyMakeBorder(photo, m, m, m, m, cv2.BORDER_REFLECT_101)[
        y0 : y1 + 2 * m, x0 : x1 + 2 * m
    ]
    cov = np.pad(coverage, m)[y0 : y1 + 2 * m, x0 : x1 + 2 * m]
    dsize = (round(cov.shape[1] * scale), round(cov.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, dsize, interpolation=interp)
    alpha = np.clip(cv2.resize(cov, dsize, interpolation=interp), 0, 1)
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    return np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32)


def _object(
    name: str,
    files: dict[str, Path],
    variety: int,
    side: float,
    feather: float,
    other: bool = False,
) -> np.ndarray:
    """The cut-out ``name`` (one of `OBJECTS`); ``other``: a different cut of the same photo
    (mirrored), the look-alike a distractor is made of. ``variety`` seeds the small random
    choices, the same for an object and its look-alike so that they can differ on purpose."""
    jitter = np.random.default_rng([variety, int(other)]).uniform(-1, 1, 4)
    if name == "cat":
        photo = _photo(files["chelsea.png"])
        if other:  # the cat's cheek and whiskers, below the left eye
            cov = _ellipses(photo.shape[:2], (150 + 10 * jitter[0], 200, 110, 90))
        else:  # the whole face, eyes and nose
            cov = _ellipses(photo.shape[:2], (232 + 8 * jitter[0], 155, 148 + 6 * jitter[1], 132))
    elif name == "cup":
        photo = _photo(files["coffee.png"])
        saucer = (278.0, 241.0, 190 + 5 * jitter[0], 138.0)
        cup = (291.0, 108.0, 116.0, 92.0)
        cov = _ellipses(photo.shape[:2], cup) if other else _ellipses(photo.shape[:2], saucer, cup)
    elif name == "horse":
        silhouette = _read(files["horse.png"], cv2.IMREAD_GRAYSCALE)
        cov = 1 - silhouette.astype(np.float32) / 255  # black horse on white, anti-aliased
        fur = _photo(files["chelsea.png"])
        if other:  # a different stretch of fur
            fur = fur[::-1, ::-1]
        photo = cv2.resize(np.ascontiguousarray(fur), cov.shape[::-1])
    elif name == "coin":
        photo, cov = _coin(files, variety, other)
    else:
        raise ValueError(f"unknown object {name!r}")
    patch = _cutout(photo, cov, side, feather)
    return np.ascontiguousarray(patch[:, ::-1]) if other else patch


def _coin(files: dict[str, Path], variety: int, other: bool) -> tuple[np.ndarray, np.ndarray]:
    """One coin of ``coins.png`` (tinted bronze) and its coverage: bright coins on a flat dark
    background, so Otsu's threshold with holes filled follows the coin's rim closely."""
    grey = _read(files["coins.png"], cv2.IMREAD_GRAYSCALE)
    _, fg = cv2.threshold(cv2.GaussianBlur(grey, (5, 5), 0), 0, 1, cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    h, w = grey.shape
    coins = [
        i
        for i in range(1, n)
        if stats[i, cv2.CC_STAT_AREA] > 1200
        and stats[i, cv2.CC_STAT_LEFT] > 0
        and stats[i, cv2.CC_STAT_TOP] > 0
        and stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] < w
        and stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] < h
    ]
    # the object and its look-alike: two different coins
    pair = np.random.default_rng(variety).choice(len(coins), 2, replace=False)
    shape = (labels == coins[int(pair[1 if other else 0])]).astype(np.uint8)
    # fill the dark engravings inside the coin: everything not reachable from outside
    flood = np.pad(shape, 1)
    cv2.floodFill(flood, None, (0, 0), 2)
    cov = (flood[1:-1, 1:-1] != 2).astype(np.float32)
    rgb = np.dstack([grey] * 3).astype(np.float32) * np.array([1.0, 0.85, 0.62], np.float32)
    return rgb, cov


# --- scenes -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Track:
    """Keyframed values (rows of ``values`` at frame ``times``), eased between keyframes so
    that motion speeds up and slows down (fast stretches blur, slow ones stay sharp)."""

    times: np.ndarray
    values: np.ndarray
    ease: bool = True

    def at(self, t: float) -> np.ndarray:
        i = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2))
        t0, t1 = float(self.times[i]), float(self.times[i + 1])
        u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        s = u * u * (3 - 2 * u) if self.ease else u
        out: np.ndarray = self.values[i] + (self.values[i + 1] - self.values[i]) * s
        return out


@dataclass(frozen=True, eq=False)
class _Elastic:
    """A smooth time-varying warp of a patch: two transverse sine waves, one across its rows
    and one across its columns, travelling over time (a flag in the wind, a wobbling jelly)."""

    amp: float  # peak displacement, fraction of the patch size
    freq: tuple[float, float]  # cycles across the patch
    phase: tuple[float, float]
    speed: tuple[float, float]  # radians per frame

    def warp(self, patch: np.ndarray, t: float) -> np.ndarray:
        h, w = patch.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx = (
            self.amp
            * w
            * np.sin(2 * np.pi * self.freq[0] * yy / h + self.phase[0] + self.speed[0] * t)
        )
        dy = (
            self.amp
            * h
            * np.sin(2 * np.pi * self.freq[1] * xx / w + self.phase[1] + self.speed[1] * t)
        )
        warped: np.ndarray = cv2.remap(
            patch,
            xx + dx.astype(np.float32),
            yy + dy.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return warped


@dataclass(frozen=True, eq=False)
class _Layer:
    patch: np.ndarray  # premultiplied RGBA float32, the shape centred
    track: _Track  # centre x, centre y (frame pixels), angle (degrees), scale
    elastic: _Elastic | None = None

    def matrix(self, t: float) -> np.ndarray:
        cx, cy, angle, scale = (float(v) for v in self.track.at(t))
        h, w = self.patch.shape[:2]
        m: np.ndarray = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
        m[0, 2] += cx - (w - 1) / 2
        m[1, 2] += cy - (h - 1) / 2
        return m

    def render(
        self, t: float, size: tuple[int, int]
    ) -> tuple[np.ndarray, tuple[slice, slice]] | None:
        """The layer warped into the frame, only over its bounding box (most of the frame is
        far from it: compositing there would be wasted) and that box; None when off-frame."""
        m = self.matrix(t)
        corners = self.corners(t)
        x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (size[1], size[0]))
        if x1 <= x0 or y1 <= y0:
            return None
        m[0, 2] -= x0
        m[1, 2] -= y0
        patch = self.elastic.warp(self.patch, t) if self.elastic else self.patch
        out: np.ndarray = cv2.warpAffine(
            patch,
            m,
            (int(x1 - x0), int(y1 - y0)),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return out, (slice(int(y0), int(y1)), slice(int(x0), int(x1)))

    def corners(self, t: float) -> np.ndarray:
        h, w = self.patch.shape[:2]
        pts = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64)
        out: np.ndarray = pts @ self.matrix(t).T
        return out


@dataclass(frozen=True, eq=False)
class _Scene:
    background: np.ndarray  # RGB float32, larger than the frame
    pan: _Track  # top-left corner of the crop window on the background (x, y)
    layers: tuple[_Layer, ...]  # back to front
    target: int  # which layer is the object
    size: tuple[int, int]

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB, the target's visible alpha and its alpha as if nothing were in front of it."""
        h, w = self.size
        x, y = (float(v) for v in self.pan.at(t))
        # a sub-pixel crop (bilinear), several times cheaper than the same warpAffine
        centre = (x + (w - 1) / 2, y + (h - 1) / 2)
        rgb: np.ndarray = cv2.getRectSubPix(self.background, (w, h), centre)
        visible = np.zeros((h, w), np.float32)
        full = np.zeros((h, w), np.float32)
        for i, layer in enumerate(self.layers):
            drawn = layer.render(t, self.size)
            if drawn is None:
                continue
            rgba, box = drawn
            alpha = np.ascontiguousarray(rgba[..., 3])
            # "over" with premultiplied colour; cv2 splits the channels into contiguous
            # arrays, several times faster than numpy broadcasting over a 3-wide last axis
            keep = cv2.cvtColor(1 - alpha, cv2.COLOR_GRAY2RGB)
            rgb[box] = rgb[box] * keep + cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
            if i == self.target:
                full[box] = alpha
                visible[box] = alpha
            elif i > self.target:
                visible[box] *= 1 - alpha
        return rgb, visible, full

    def motion(self, t: float) -> float:
        """How far anything moves in frame pixels during the exposure of frame ``t``."""
        t0, t1 = t - SHUTTER / 2, t + SHUTTER / 2
        moved = [float(np.linalg.norm(self.pan.at(t1) - self.pan.at(t0)))]
        for layer in self.layers:
            moved.append(float(np.linalg.norm(layer.corners(t1) - layer.corners(t0), axis=1).max()))
        return max(moved)


def _film(scene: _Scene, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, masks and which frames have the target partly hidden. A frame is the mean of
    sub-frame renders over the exposure, as many as its motion needs, so fast frames blur; its
    mask is where the target's mean visible alpha is at least 0.5."""
    h, w = scene.size
    video = np.empty((frames, h, w, 3), np.uint8)
    masks = np.empty((frames, h, w), bool)
    hidden = np.zeros(frames, bool)
    for t in range(frames):
        n = min(MAX_SUBFRAMES, max(1, math.ceil(scene.motion(t) / BLUR_STEP_PX)))
        rgb = np.zeros((h, w, 3), np.float32)
        visible = np.zeros((h, w), np.float32)
        full = np.zeros((h, w), np.float32)
        for k in range(n):
            sub = scene.render(t + SHUTTER * ((k + 0.5) / n - 0.5))
            rgb += sub[0]
            visible += sub[1]
            full += sub[2]
        video[t] = np.clip(np.rint(rgb / n), 0, 255).astype(np.uint8)
        masks[t] = visible / n >= 0.5
        hidden[t] = bool(np.any((full / n >= 0.5) & ~masks[t]))
    return video, masks, hidden


def _scene(
    kind: str,
    obj: str,
    background: str,
    files: dict[str, Path],
    rng: np.random.Generator,
    frames: int,
    size: tuple[int, int],
) -> _Scene:
    h, w = size
    feather = max(0.5, 0.004 * h)  # ~1.5 px at 360p: a soft edge, as a real camera's is
    side = _SIDE[obj] * h  # the object's longer side, frame pixels
    last = frames - 1
    keys = np.linspace(0, last, 4)  # four keyframes: three moves of different speeds

    def path(x: tuple[float, float], y: tuple[float, float], turn: float, zoom: float) -> _Track:
        """Random keyframes: centre within the x, y ranges (fractions of the frame), a
        random walk of the angle (degrees per move) and scale within 1 ± zoom."""
        cx = rng.uniform(*x, len(keys)) * w
        cy = rng.uniform(*y, len(keys)) * h
        angle = np.cumsum(rng.uniform(-turn, turn, len(keys)))
        scale = rng.uniform(1 - zoom, 1 + zoom, len(keys))
        return _Track(keys, np.stack([cx, cy, angle, scale], axis=1))

    variety = int(rng.integers(1 << 31))
    target = _object(obj, files, variety, side, feather)
    layers: list[_Layer] = []
    if kind == "affine":
        track = path((0.28, 0.72), (0.35, 0.65), 35, 0.25)
        # the middle move is a whip: across the frame in a sixth of the sequence, so its
        # frames blur hard (up to ~35 px during the exposure at 640x360); the others don't
        start = rng.uniform(0.3, 0.45) * last
        times = np.array([0.0, start, start + rng.uniform(0.12, 0.2) * last, last])
        side_to_side = rng.choice([-1, 1]) * np.array([0.0, -0.2, 0.2, 0.0])
        track.values[1:3, 0] = (0.5 + side_to_side[1:3]) * w
        layers.append(_Layer(target, _Track(times, track.values)))
    elif kind == "nonrigid":
        freq, phase = rng.uniform(0.5, 1.0, 2), rng.uniform(0, 2 * np.pi, 2)
        # two to three swings over the sequence, whatever its length
        speed = rng.uniform(2, 3, 2) * 2 * np.pi / last
        wave = _Elastic(
            amp=float(rng.uniform(0.06, 0.09)),
            freq=(float(freq[0]), float(freq[1])),
            phase=(float(phase[0]), float(phase[1])),
            speed=(float(speed[0]), float(speed[1])),
        )
        layers.append(_Layer(target, path((0.35, 0.65), (0.4, 0.6), 10, 0.1), wave))
    elif kind == "distractor":
        main = path((0.35, 0.65), (0.4, 0.6), 20, 0.1)
        # the look-alike starts beside the object, crosses behind it (offset a little up or
        # down, so it shows above or below), and ends on the other side
        s = np.linspace(1, -1, len(keys))
        lift = rng.choice([-1, 1]) * 0.35 * side
        offset = np.stack([s * 1.1 * side, s * lift, np.zeros_like(s), np.zeros_like(s)], axis=1)
        look = main.values + offset
        look[:, 2] = rng.uniform(-30, 30, len(keys))
        look[:, 3] = rng.uniform(0.8, 0.95, len(keys))
        twin = _object(obj, files, variety, side, feather, other=True)
        layers += [_Layer(twin, _Track(keys, look)), _Layer(target, main)]
    elif kind == "occluder":
        # fixed scale: the object's area changes only where the bar hides it
        layers.append(_Layer(target, path((0.3, 0.45), (0.4, 0.6), 15, 0.0)))
        bar_w, bar_h = 0.12 * w, 1.25 * h
        texture = next(t for t in ("brick.png", "gravel.png", "grass.png") if t != background)
        photo = _photo(files[texture])
        src_h = 480  # a column of the texture, as tall as it allows and bar-shaped
        src_w = max(2, round(src_h * bar_w / bar_h))
        x0 = int(rng.integers(0, photo.shape[1] - src_w))
        cov = np.zeros(photo.shape[:2], np.float32)
        cov[16 : 16 + src_h, x0 : x0 + src_w] = 1
        bar = _cutout(photo, cov, bar_h, feather)
        tilt = float(rng.uniform(-12, 12))
        # constant speed from off the left edge to off the right one over the whole sequence
        sweep = np.array([[-bar_w, h / 2, tilt, 1.0], [w + bar_w, h / 2, tilt, 1.0]])
        layers.append(_Layer(bar, _Track(np.array([0.0, float(last)]), sweep, ease=False)))
    else:
        raise ValueError(f"unknown kind {kind!r}")

    photo = _photo(files[background])
    # big enough to pan over: at least 1.3x the frame each way, a little more at random
    zoom = max(1.3 * h / photo.shape[0], 1.3 * w / photo.shape[1]) * rng.uniform(1.0, 1.2)
    dsize = (round(photo.shape[1] * zoom), round(photo.shape[0] * zoom))
    interp = cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC
    scenery = np.clip(cv2.resize(np.asarray(photo), dsize, interpolation=interp), 0, 255)
    room = (dsize[0] - w, dsize[1] - h)
    pan_keys = np.linspace(0, last, 3)
    corner = np.stack([rng.uniform(0, room[0], 3), rng.uniform(0, room[1], 3)], axis=1)
    return _Scene(
        background=scenery,
        pan=_Track(pan_keys, corner),
        layers=tuple(layers),
        target=next(i for i, layer in enumerate(layers) if layer.patch is target),
        size=size,
    )
