#!/usr/bin/env python3
"""Write deploy/schemas/keda.sh_v1alpha1_scaledobject.json: the JSON Schema of KEDA's
ScaledObject that tests/test_deploy.py checks deploy/keda.yaml against.

Where it comes from: KEDA publishes its CRDs with its releases, not in a package registry. The
PyPI package ``cloudcoil-models-keda`` is generated from those CRDs' OpenAPI schemas (one
release per KEDA release: 2.16.1.0 is KEDA v2.16.1) as pydantic models; pydantic writes them
back out as JSON Schema. Both wheels are pinned by sha256, like playhead's model weights. The
output is tidied to read like the CRD's schema (no ``null`` alternatives, no generated titles)
and records where it came from under ``x-source``.

Run it with the project's interpreter (it has pydantic, httpx and PyYAML, which the models
import) and commit the result: ``.venv/bin/python scripts/keda_schema.py``
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "schemas" / "keda.sh_v1alpha1_scaledobject.json"
KEDA_VERSION = "2.16.1"
WHEELS = {  # requirement -> sha256 of its wheel (py3-none-any: the same on every platform)
    "cloudcoil-models-keda==2.16.1.0": (
        "9ec4a118def872b68216d9057ef386701b32fcb0ec2173f49c6214d309176b46"
    ),
    "cloudcoil==0.6.0": "91793dea2e86ad292af143c5d335ce2e5d27dfbe66fd4b945c2f069224cf7698",
}
DUMP = (
    "import json, sys\n"
    "from cloudcoil.models.keda.v1alpha1 import ScaledObject\n"
    "json.dump(ScaledObject.model_json_schema(by_alias=True, mode='validation'), sys.stdout)\n"
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [download(req, sha, Path(tmp) / "wheels") for req, sha in WHEELS.items()]
        site = Path(tmp) / "site"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        subprocess.run([*pip, "--target", str(site), *map(str, wheels)], check=True)
        env = {**os.environ, "PYTHONPATH": str(site)}
        dumped = subprocess.run(
            [sys.executable, "-c", DUMP], check=True, capture_output=True, text=True, env=env
        ).stdout
    schema = tidy(json.loads(dumped))
    schema["x-source"] = {
        "what": f"KEDA v{KEDA_VERSION} ScaledObject (keda.sh/v1alpha1) CRD schema",
        "via": "pydantic models generated from the CRD, written back out as JSON Schema",
        "packages": [{"pypi": req, "wheel_sha256": sha} for req, sha in sorted(WHEELS.items())],
        "generator": "scripts/keda_schema.py",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


def download(requirement: str, sha256: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl")) if dest.exists() else set()
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", "-d", str(dest), requirement]
    subprocess.run(cmd, check=True)
    (wheel,) = set(dest.glob("*.whl")) - before
    got = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if got != sha256:
        raise SystemExit(f"{wheel.name}: sha256 {got}, expected {sha256}")
    return wheel


def tidy(node: Any) -> Any:
    """Drop what pydantic adds and a CRD schema does not say: ``anyOf [X, null]`` is X, a
    ``null`` default and the generated titles go."""
    if isinstance(node, list):
        return [tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        merged = {k: v for k, v in node.items() if k != "anyOf"}
        if len(rest) == 1:
            merged.update(rest[0])
        else:
            merged["anyOf"] = rest
        node = merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        # "properties" and "$defs" map names to schemas: tidy each, keep every name
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: tidy(sub) for name, sub in value.items()}
        else:
            out[key] = tidy(value)
    return out


if __name__ == "__main__":
    sys.exit(main())
