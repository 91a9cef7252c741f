#!/usr/bin/env bash
# Check playhead's GPU path against its CPU path on this machine, in one go (see gpu_check.py):
# detection, ONNX on CUDA, NVENC exports and segments, NVDEC reads, LiteRT; exit 0 = all passed.
#
#   bash benchmarks/gpu_check.sh [--require gpu,nvenc,nvdec,ort-cuda] [--keep --work DIR]
#
# Runs anywhere: without a GPU it says so and checks that every cuda path falls back to the
# CPU one (byte for byte). Here, on a developer machine, it takes well under 2 minutes.
#
# On a bare GPU machine (no project venv, no network), prepare once on a machine that has both:
#
#   bash benchmarks/gpu_check.sh --prepare     # → .gpucheck/: wheels + model weights (~60 MB)
#
# then, on the GPU machine, from the repository root, carrying .gpucheck (git-ignored):
#
#   bash benchmarks/gpu_check.sh
#
# The wheels are those playhead needs beyond a CUDA image with numpy, OpenCV, onnx and
# onnxruntime (av, ai-edge-litert, pydantic): the same versions as this venv, for CPython 3.12.
# onnxruntime-gpu (~300 MB) does not fit in such a carry: where the image's onnxruntime has no
# CUDA provider the check reports it (ort-cuda: False) and runs ONNX on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=python3
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import playhead' 2>/dev/null; then
    PY=.venv/bin/python
fi

if [ "${1:-}" = "--prepare" ]; then
    set -e
    mkdir -p .gpucheck/wheels .gpucheck/home/models
    grep -qx '/.gpucheck/' .git/info/exclude 2>/dev/null || echo '/.gpucheck/' >>.git/info/exclude
    pins=$($PY - <<'EOF'
from importlib.metadata import version
names = ["av", "ai-edge-litert", "pydantic", "pydantic-core", "annotated-types",
         "typing-inspection", "backports.strenum"]
print(" ".join(f"{n}=={version(n)}" for n in names))
EOF
)
    platforms=""
    for n in 17 24 27 28 31 34 35; do platforms="$platforms --platform manylinux_2_${n}_x86_64"; done
    # shellcheck disable=SC2086
    $PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp $platforms --platform manylinux2014_x86_64 \
        -d .gpucheck/wheels $pins
    models=$($PY -c 'from playhead.effects import models; models.fetch(); from playhead import paths; print(paths.models_dir())')
    cp "$models"/*.tflite .gpucheck/home/models/
    du -sh .gpucheck
    echo "prepared: carry .gpucheck and run: bash benchmarks/gpu_check.sh"
    exit 0
fi

if ls .gpucheck/wheels/*.whl >/dev/null 2>&1; then
    site=/tmp/playhead-gpucheck-site
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .gpucheck/wheels/*.whl || exit 2
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d .gpucheck/home/models ]; then
    export PLAYHEAD_HOME="$PWD/.gpucheck/home"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the checkout, installed or not
export PYTHONUNBUFFERED=1
unset PLAYHEAD_DEVICE PLAYHEAD_NVDEC

echo "== nvidia-smi"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "  not installed"
fi
exec "$PY" benchmarks/gpu_check.py "$@"
