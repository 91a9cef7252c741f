"""deploy/ checked without a cluster or a Docker daemon.

- The Kustomization is rendered here: its resources are loaded and its ``namespace`` and
  ``images`` applied; any other Kustomize field fails the render instead of being ignored.
- Every built-in kind is checked against the Kubernetes API's own schemas in strict mode
  (kubernetes-validate: an unknown field is an error), each ScaledObject against KEDA's schema
  (deploy/schemas/, made strict the same way).
- The references between objects, which no schema sees: Services and the pods they select,
  ports, probes and the app's routes, disruption budgets, KEDA's targets and the demand fields
  they read, the API's device classes and the workers', Secrets and ConfigMaps, grace periods.
- The image recipe: what it copies is in the build context, and every command, the image's
  and the pods', parses with playhead's own command line.

Each check is a function that returns the problems it finds; each test shows that it finds
none in deploy/ and that it finds the fault it exists for in a broken copy.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from playhead import paths
from playhead.cli import _parser
from playhead.server.app import create_app
from playhead.server.config import ServeConfig
from playhead.server.routes import web

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
README = DEPLOY / "README.md"
KEDA_SCHEMA = DEPLOY / "schemas" / "keda.sh_v1alpha1_scaledobject.json"
EXAMPLE_SECRET = DEPLOY / "s3-secret.example.yaml"

K8S_VERSIONS = ("1.30.0", "1.37.0")  # the oldest we claim, the newest kubernetes-validate has
PLAYHEAD_IMAGES = {"playhead", "playhead-cuda"}  # the two builds of deploy/Dockerfile
DOCUMENTED_SECRETS = {"playhead-s3": EXAMPLE_SECRET}  # created by hand (deploy/README.md)
TARGETS = ("cpu", "cuda")  # Dockerfile stages that are images; the last one is the default
GRACE_MARGIN_S = 5  # a worker's pod outlives its --grace by at least this
FLEET_PATH = "/api/fleet"
FLEET_TARGETS = {"desired_workers": "1", "low_slack_jobs": None}  # field -> its targetValue
# the metrics-api scaler's parameters (KEDA's docs): the CRD types trigger metadata as a free
# map of strings, so the schema passes a misspelled one and this list catches it
METRICS_API_KEYS = {
    "url",
    "valueLocation",
    "targetValue",
    "activationTargetValue",
    "format",
    "unsafeSsl",
    "authMode",
    "method",
    "keyParamName",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
}
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}

Doc = dict[str, Any]


# ---- rendering the Kustomization ------------------------------------------------------------


class RenderError(Exception):
    pass


def load_yaml(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path = DEPLOY) -> list[Doc]:
    """What ``kubectl kustomize`` would print for ``directory``, for the fields used here."""
    (kustomization,) = load_yaml(directory / "kustomization.yaml")
    unknown = sorted(set(kustomization) - KUSTOMIZE_FIELDS)
    if unknown:
        raise RenderError(
            f"kustomization.yaml uses {unknown}; this renderer does only "
            f"{sorted(KUSTOMIZE_FIELDS)}: teach it those first (tests/test_deploy.py)"
        )
    docs: list[Doc] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if not path.is_file():
            raise RenderError(f"resource {resource!r} is not a file in {directory}")
        docs += load_yaml(path)
    namespace = kustomization.get("namespace")
    images = {i["name"]: i for i in kustomization.get("images", [])}
    seen: set[tuple[str, str, str | None, str]] = set()
    for doc in docs:
        meta = doc["metadata"]
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace"), meta["name"])
        if key in seen:
            raise RenderError(f"{doc['kind']} {meta['name']} is defined twice")
        seen.add(key)
        for c in containers(doc):
            image, tag = split_image(c["image"])
            if image in images:
                new = images[image]
                c["image"] = f"{new.get('newName', image)}:{new.get('newTag', tag)}"
    return docs


def split_image(image: str) -> tuple[str, str | None]:
    """``name[:tag]``; a registry's ``host:port/`` is part of the name."""
    head, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return head, tag
    return image, None


@cache
def _rendered() -> list[Doc]:
    return render()


@pytest.fixture
def docs() -> list[Doc]:
    """A fresh copy of the render: a test may break it."""
    return copy.deepcopy(_rendered())


# ---- reading objects ----------------------------------------------------------------------------


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def name(doc: Doc) -> str:
    return f"{doc['kind']} {doc['metadata']['name']}"


def find(docs: list[Doc], kind: str, named: str, namespace: str | None) -> Doc | None:
    for d in of_kind(docs, kind):
        if d["metadata"]["name"] == named and d["metadata"].get("namespace") == namespace:
            return d
    return None


def pod_spec(doc: Doc) -> dict[str, Any] | None:
    if doc["kind"] in POD_TEMPLATE_KINDS:
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def pod_labels(doc: Doc) -> dict[str, str]:
    return dict(doc["spec"]["template"]["metadata"].get("labels") or {})


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in POD_TEMPLATE_KINDS]


def containers(doc: Doc) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def is_playhead(container: Mapping[str, Any]) -> bool:
    image, _ = split_image(container["image"])
    return image.rsplit("/", 1)[-1] in PLAYHEAD_IMAGES


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def match_labels(label_selector: Mapping[str, Any]) -> dict[str, str]:
    if label_selector.get("matchExpressions"):
        raise AssertionError("matchExpressions: teach tests/test_deploy.py to read them")
    return dict(label_selector.get("matchLabels") or {})


def port_matches(target: int | str, port: Mapping[str, Any]) -> bool:
    return target in (port.get("name"), port.get("containerPort"))


def same_namespace(a: Doc, b: Doc) -> bool:
    return bool(a["metadata"].get("namespace") == b["metadata"].get("namespace"))


def option(args: list[str], flag: str) -> str | None:
    """The value given to ``flag`` in an argument list (``--flag V`` or ``--flag=V``)."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def worker_device(doc: Doc) -> str | None:
    for c in containers(doc):
        args = list(c.get("args", []))
        if is_playhead(c) and args[:1] == ["worker"]:
            return option(args, "--device")
    return None


def is_worker(doc: Doc) -> bool:
    return any(
        is_playhead(c) and list(c.get("args", []))[:1] == ["worker"] for c in containers(doc)
    )


# ---- the kustomization itself ---------------------------------------------------------------


def test_the_render_names_every_manifest_once_and_keeps_the_example_secret_out() -> None:
    rendered = render()
    (kustomization,) = load_yaml(DEPLOY / "kustomization.yaml")
    resources = set(kustomization["resources"])
    manifests = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests - resources == {EXAMPLE_SECRET.name}, "a manifest kustomization misses"
    assert not of_kind(rendered, "Secret"), "credentials do not belong in the repository"
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {
        "playhead"
    }
    for c in (c for d in rendered for c in containers(d)):
        assert split_image(c["image"])[1], f"image {c['image']} has no tag"


def test_the_render_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    for f in DEPLOY.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    (kustomization,) = load_yaml(tmp_path / "kustomization.yaml")
    broken = {**kustomization, "resources": [*kustomization["resources"], "missing.yaml"]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(RenderError, match=r"missing\.yaml"):
        render(tmp_path)
    patched = {**kustomization, "patches": [{"path": "p.yaml"}]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(patched))
    with pytest.raises(RenderError, match="patches"):
        render(tmp_path)
    twice = {**kustomization, "resources": [*kustomization["resources"], "api.yaml"]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(twice))
    with pytest.raises(RenderError, match="twice"):
        render(tmp_path)


# ---- schemas ------------------------------------------------------------------------------------


def kubernetes_problems(docs: list[Doc], version: str) -> list[str]:
    problems = []
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            problems.append(f"{name(doc)}: {where}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{name(doc)}: {e.message}")
    return problems


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_builtin_kind_passes_kubernetes_strict_schemas(docs: list[Doc], version: str) -> None:
    assert kubernetes_problems([*docs, *load_yaml(EXAMPLE_SECRET)], version) == []


def test_kubernetes_schemas_reject_a_misspelled_field(docs: list[Doc]) -> None:
    api = find(docs, "Deployment", "playhead-api", "playhead")
    assert api is not None
    spec = api["spec"]["template"]["spec"]
    spec["terminationGracePeriodSecond"] = spec.pop("terminationGracePeriodSeconds")
    redis = find(docs, "StatefulSet", "playhead-redis", "playhead")
    assert redis is not None
    redis["spec"]["volumeClaimTemplates"][0]["spec"]["accessMode"] = ["ReadWriteOnce"]
    problems = kubernetes_problems(docs, K8S_VERSIONS[-1])
    assert len(problems) == 2
    assert "terminationGracePeriodSecond" in problems[0] + problems[1]
    assert "accessMode" in problems[0] + problems[1]


def strict(schema: Any) -> Any:
    """A CRD's schema as the API server applies it under strict field validation (``kubectl
    apply --validate=strict``): where an object lists its properties, nothing else is allowed.
    (Otherwise a structural schema prunes unknown fields silently: in a manifest in a
    repository an unknown field is a typo.)"""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def keda_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(KEDA_SCHEMA.read_text())
    return jsonschema.Draft202012Validator(strict(schema))


def keda_problems(docs: list[Doc]) -> list[str]:
    validator = keda_validator()
    problems = []
    for doc in docs:
        if doc["kind"] != "ScaledObject":
            continue
        if doc["apiVersion"] != "keda.sh/v1alpha1":
            problems.append(f"{name(doc)}: apiVersion {doc['apiVersion']}")
        for e in validator.iter_errors(doc):
            problems.append(f"{name(doc)}: {'.'.join(map(str, e.path))}: {e.message}")
    return problems


def test_the_keda_schema_records_where_it_came_from() -> None:
    source = json.loads(KEDA_SCHEMA.read_text())["x-source"]
    assert source["generator"] == "scripts/keda_schema.py"
    assert (ROOT / source["generator"]).is_file()
    for package in source["packages"]:
        assert re.fullmatch(r"[a-z0-9-]+==[0-9.]+", package["pypi"])
        assert re.fullmatch(r"[0-9a-f]{64}", package["wheel_sha256"])


def test_scaled_objects_pass_the_keda_schema(docs: list[Doc]) -> None:
    assert len(of_kind(docs, "ScaledObject")) == 2
    assert keda_problems(docs) == []


@pytest.mark.parametrize(
    ("path", "bad_key", "value"),
    [
        (["spec"], "minReplicaCont", 1),
        (["spec", "advanced", "horizontalPodAutoscalerConfig"], "behaviour", {}),
        (["spec", "triggers", 0], "metricTyp", "AverageValue"),
        (["spec", "scaleTargetRef"], "nam", "x"),
    ],
)
def test_the_keda_schema_rejects_a_misspelled_field(
    docs: list[Doc], path: list[str | int], bad_key: str, value: Any
) -> None:
    target: Any = of_kind(docs, "ScaledObject")[0]
    for step in path:
        target = target[step]
    target[bad_key] = value
    (problem,) = keda_problems(docs)
    assert repr(bad_key) in problem and "not allowed" in problem


def test_the_keda_schema_rejects_a_wrong_type(docs: list[Doc]) -> None:
    of_kind(docs, "ScaledObject")[0]["spec"]["pollingInterval"] = "5"
    (problem,) = keda_problems(docs)
    assert "pollingInterval" in problem and "integer" in problem


# ---- references between objects -------------------------------------------------------------


def service_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for svc in of_kind(docs, "Service"):
        selector = svc["spec"].get("selector") or {}
        pods = [w for w in workloads(docs) if same_namespace(w, svc)]
        pods = [w for w in pods if selects(selector, pod_labels(w))]
        if not pods:
            problems.append(f"{name(svc)}: selector {selector} matches no pod template")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for w in pods:
                declared = [p for c in containers(w) for p in c.get("ports", [])]
                if not any(port_matches(target, p) for p in declared):
                    problems.append(
                        f"{name(svc)}: targetPort {target!r} is not a port of {name(w)}"
                    )
    for sts in of_kind(docs, "StatefulSet"):
        ns = sts["metadata"].get("namespace")
        headless = find(docs, "Service", sts["spec"]["serviceName"], ns)
        if headless is None or headless["spec"].get("clusterIP") != "None":
            problems.append(f"{name(sts)}: serviceName names no headless Service")
        elif not selects(headless["spec"].get("selector") or {}, pod_labels(sts)):
            problems.append(f"{name(sts)}: its Service does not select its pods")
    return problems


def test_services_select_pods_and_reach_their_ports(docs: list[Doc]) -> None:
    assert service_problems(docs) == []
    api = find(docs, "Service", "playhead-api", "playhead")
    assert api is not None
    broken = copy.deepcopy(docs)
    api["spec"]["ports"][0]["targetPort"] = "htp"
    assert service_problems(docs) == [
        "Service playhead-api: targetPort 'htp' is not a port of Deployment playhead-api"
    ]
    svc = find(broken, "Service", "playhead-api", "playhead")
    assert svc is not None
    svc["spec"]["selector"]["app.kubernetes.io/component"] = "apl"
    assert len(service_problems(broken)) == 1
    assert "matches no pod template" in service_problems(broken)[0]


@cache
def app_get_routes() -> frozenset[str]:
    """The paths playhead's own app answers GET on, from its OpenAPI description (the API's
    routes; the editor's static files are not in it)."""
    app = create_app(ServeConfig(data_dir=Path("/nonexistent")))  # routes only: no lifespan
    described: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return frozenset(path for path, ops in described.items() if "get" in ops and "{" not in path)


def probe_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for w in workloads(docs):
        for c in containers(w):
            declared = c.get("ports", [])
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(kind)
                if probe is None:
                    continue
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in probe:
                        port = probe[handler]["port"]
                        if not any(port_matches(port, p) for p in declared):
                            problems.append(f"{name(w)} {kind}: port {port!r} is not declared")
                http = probe.get("httpGet")
                if http and is_playhead(c) and http["path"] not in app_get_routes():
                    problems.append(f"{name(w)} {kind}: playhead has no GET {http['path']}")
    return problems


def api_problems(docs: list[Doc]) -> list[str]:
    """The API replicas: several, live on /healthz, ready on /readyz, drained before SIGTERM,
    listening where the Service sends."""
    api = find(docs, "Deployment", "playhead-api", "playhead")
    if api is None:
        return ["no Deployment playhead-api"]
    problems = []
    if api["spec"].get("replicas", 1) < 2:
        problems.append("playhead-api: fewer than 2 replicas")
    spec = api["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
        problems.append("playhead-api: liveness is not /healthz")
    if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
        problems.append("playhead-api: readiness is not /readyz")
    pre_stop = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")
    if not pre_stop or pre_stop[0] != "sleep" or float(pre_stop[1]) <= 0:
        problems.append("playhead-api: no preStop sleep")
    elif spec.get("terminationGracePeriodSeconds", 30) <= float(pre_stop[1]):
        problems.append("playhead-api: the grace period ends within the preStop sleep")
    args = parse(c["args"], {"PLAYHEAD_REDIS": "redis://r:6379/0", "PLAYHEAD_STORE": "s3://b"})
    if not any(p.get("containerPort") == args.port for p in c.get("ports", [])):
        problems.append(f"playhead-api: serves on {args.port}, which no containerPort declares")
    if args.host != "0.0.0.0" or args.workers != 0:
        problems.append("playhead-api: an API replica listens on 0.0.0.0 with --workers 0")
    return problems


def test_probes_use_declared_ports_and_real_routes(docs: list[Doc]) -> None:
    assert {"/healthz", "/readyz"} <= app_get_routes()
    assert probe_problems(docs) == []
    api = find(docs, "Deployment", "playhead-api", "playhead")
    assert api is not None
    (c,) = api["spec"]["template"]["spec"]["containers"]
    c["readinessProbe"]["httpGet"]["path"] = "/ready"
    c["livenessProbe"]["httpGet"]["port"] = "htp"
    assert probe_problems(docs) == [
        "Deployment playhead-api livenessProbe: port 'htp' is not declared",
        "Deployment playhead-api readinessProbe: playhead has no GET /ready",
    ]


def test_api_replicas_are_probed_drained_and_reachable(docs: list[Doc]) -> None:
    assert api_problems(docs) == []
    api = find(docs, "Deployment", "playhead-api", "playhead")
    assert api is not None
    api["spec"]["replicas"] = 1
    (c,) = api["spec"]["template"]["spec"]["containers"]
    del c["lifecycle"]
    c["args"][c["args"].index("--port") + 1] = "8080"
    assert api_problems(docs) == [
        "playhead-api: fewer than 2 replicas",
        "playhead-api: no preStop sleep",
        "playhead-api: serves on 8080, which no containerPort declares",
    ]


def grace_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for w in filter(is_worker, workloads(docs)):
        spec = pod_spec(w) or {}
        for c in containers(w):
            grace = option(list(c.get("args", [])), "--grace")
            if grace is None:
                problems.append(f"{name(w)}: pass --grace explicitly")
                continue
            period = spec.get("terminationGracePeriodSeconds", 30)
            if period < float(grace) + GRACE_MARGIN_S:
                problems.append(
                    f"{name(w)}: terminationGracePeriodSeconds {period} < --grace {grace} + "
                    f"{GRACE_MARGIN_S}: the kubelet kills a draining worker"
                )
    return problems


def test_workers_outlive_their_grace(docs: list[Doc]) -> None:
    workers = [w for w in workloads(docs) if is_worker(w)]
    assert sorted(w["metadata"]["name"] for w in workers) == [
        "playhead-worker-cpu",
        "playhead-worker-cuda",
    ]
    assert grace_problems(docs) == []
    args = workers[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index("--grace") + 1] = "40"
    (problem,) = grace_problems(docs)
    assert "terminationGracePeriodSeconds 35 < --grace 40 + 5" in problem
    i = args.index("--grace")
    del args[i : i + 2]
    assert grace_problems(docs) == ["Deployment playhead-worker-cpu: pass --grace explicitly"]


def test_cuda_workers_ask_for_a_gpu_on_spot_nodes(docs: list[Doc]) -> None:
    cuda = find(docs, "Deployment", "playhead-worker-cuda", "playhead")
    assert cuda is not None
    spec = cuda["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert option(c["args"], "--device") == "cuda"
    assert split_image(c["image"])[0].endswith("/playhead-cuda")
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    tolerated = {t["key"] for t in spec["tolerations"]}
    assert {"nvidia.com/gpu", "cloud.google.com/gke-spot"} <= tolerated
    cpu = find(docs, "Deployment", "playhead-worker-cpu", "playhead")
    assert cpu is not None
    assert option(cpu["spec"]["template"]["spec"]["containers"][0]["args"], "--device") == "cpu"


def pdb_problems(docs: list[Doc]) -> list[str]:
    problems = []
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for pdb in pdbs:
        selector = match_labels(pdb["spec"]["selector"])
        if not any(
            same_namespace(w, pdb) and selects(selector, pod_labels(w)) for w in workloads(docs)
        ):
            problems.append(f"{name(pdb)}: selector {selector} matches no pod template")
    for w in workloads(docs):
        if not any(is_playhead(c) for c in containers(w)):
            continue
        covering = [
            p
            for p in pdbs
            if same_namespace(p, w) and selects(match_labels(p["spec"]["selector"]), pod_labels(w))
        ]
        if len(covering) != 1:
            # a pod under two budgets cannot be evicted at all
            problems.append(f"{name(w)}: {len(covering)} PodDisruptionBudgets, not 1")
    return problems


def test_every_playhead_workload_has_one_disruption_budget(docs: list[Doc]) -> None:
    assert pdb_problems(docs) == []
    pdb = find(docs, "PodDisruptionBudget", "playhead-worker-cuda", "playhead")
    assert pdb is not None
    twice = copy.deepcopy(docs)
    pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "worker-gpu"
    assert pdb_problems(docs) == [
        "PodDisruptionBudget playhead-worker-cuda: selector {'app.kubernetes.io/name': "
        "'playhead', 'app.kubernetes.io/component': 'worker-gpu'} matches no pod template",
        "Deployment playhead-worker-cuda: 0 PodDisruptionBudgets, not 1",
    ]
    extra = copy.deepcopy(find(twice, "PodDisruptionBudget", "playhead-api", "playhead"))
    assert extra is not None
    extra["metadata"]["name"] = "playhead-api-2"
    assert pdb_problems([*twice, extra]) == [
        "Deployment playhead-api: 2 PodDisruptionBudgets, not 1"
    ]


def environment(container: Mapping[str, Any], docs: list[Doc], namespace: str) -> dict[str, str]:
    """The variables a container gets from its ConfigMaps and Secrets; for a documented Secret
    (created by hand), the keys of its example."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = find(docs, "ConfigMap", source["configMapRef"]["name"], namespace)
            env.update((cm or {}).get("data", {}))
        if "secretRef" in source:
            example = DOCUMENTED_SECRETS.get(source["secretRef"]["name"])
            if example is not None:
                (secret,) = load_yaml(example)
                env.update(secret.get("stringData", {}))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def reference_problems(docs: list[Doc], readme: str) -> list[str]:
    """Every ConfigMap and Secret a pod reads exists, or (a Secret) is created by hand as
    deploy/README.md says, with an example beside it."""
    problems = []
    for w in workloads(docs):
        ns = w["metadata"].get("namespace")
        wanted: list[tuple[str, str, str | None]] = []  # (kind, name, key)
        for c in containers(w):
            for source in c.get("envFrom", []):
                for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if ref in source and not source[ref].get("optional"):
                        wanted.append((kind, source[ref]["name"], None))
            for var in c.get("env", []):
                value_from = var.get("valueFrom") or {}
                for ref, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if ref in value_from and not value_from[ref].get("optional"):
                        wanted.append((kind, value_from[ref]["name"], value_from[ref]["key"]))
        for volume in (pod_spec(w) or {}).get("volumes", []):
            if "configMap" in volume:
                wanted.append(("ConfigMap", volume["configMap"]["name"], None))
            if "secret" in volume:
                wanted.append(("Secret", volume["secret"]["secretName"], None))
        for kind, ref_name, key in wanted:
            found = find(docs, kind, ref_name, ns)
            if found is None and kind == "Secret" and ref_name in DOCUMENTED_SECRETS:
                example = DOCUMENTED_SECRETS[ref_name]
                if f"create secret generic {ref_name}" not in readme:
                    problems.append(f"{name(w)}: Secret {ref_name} is not documented")
                    continue
                if not example.is_file():
                    problems.append(f"{name(w)}: Secret {ref_name} has no example")
                    continue
                (found,) = load_yaml(example)
            if found is None:
                problems.append(f"{name(w)}: {kind} {ref_name} does not exist")
                continue
            keys = {**found.get("data", {}), **found.get("stringData", {})}
            if key is not None and key not in keys:
                problems.append(f"{name(w)}: {kind} {ref_name} has no key {key}")
    return problems


def test_every_configmap_and_secret_a_pod_reads_exists_or_is_documented(
    docs: list[Doc],
) -> None:
    readme = README.read_text()
    assert reference_problems(docs, readme) == []
    (secret,) = load_yaml(EXAMPLE_SECRET)
    assert secret["metadata"]["name"] == "playhead-s3"
    assert "PLAYHEAD_STORE" in secret["stringData"]
    api = find(docs, "Deployment", "playhead-api", "playhead")
    assert api is not None
    (c,) = api["spec"]["template"]["spec"]["containers"]
    c["envFrom"][0]["configMapRef"]["name"] = "playhead-config"
    c["env"] = [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "playhead", "key": "REDIS"}}}
    ]
    assert reference_problems(docs, readme) == [
        "Deployment playhead-api: ConfigMap playhead-config does not exist",
        "Deployment playhead-api: ConfigMap playhead has no key REDIS",
    ]
    assert reference_problems(_rendered(), readme.replace("create secret generic", "")) == [
        f"Deployment {w}: Secret playhead-s3 is not documented"
        for w in ("playhead-api", "playhead-worker-cpu", "playhead-worker-cuda")
    ]


def scaled_object_problems(docs: list[Doc]) -> list[str]:
    """Each worker class is scaled by one ScaledObject, on the demand of its own class, read
    from the API's Service; replicas are KEDA's, warm at the minimum, up fast, down slowly."""
    problems = []
    scaled: dict[str, str] = {}
    for so in of_kind(docs, "ScaledObject"):
        ns = so["metadata"].get("namespace")
        spec = so["spec"]
        ref = spec["scaleTargetRef"]
        target = None
        if ref.get("kind", "Deployment") == "Deployment":
            target = find(docs, "Deployment", ref["name"], ns)
        if target is None:
            problems.append(f"{name(so)}: scaleTargetRef names no Deployment")
            continue
        scaled[name(target)] = name(so)
        if "replicas" in target["spec"]:
            problems.append(f"{name(target)}: sets replicas, which KEDA owns (apply resets it)")
        device = worker_device(target)
        if device is None:
            problems.append(f"{name(so)}: {name(target)} is no worker with --device")
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not 1 <= low <= high:
            problems.append(f"{name(so)}: replicas {low}..{high}: keep a warm minimum")
        fallback = spec.get("fallback", {}).get("replicas")
        if fallback is not None and not low <= fallback <= high:
            problems.append(f"{name(so)}: fallback {fallback} outside {low}..{high}")
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        behavior = behavior.get("behavior", {})
        if behavior.get("scaleUp", {}).get("stabilizationWindowSeconds") != 0:
            problems.append(f"{name(so)}: scale-up waits")
        if behavior.get("scaleDown", {}).get("stabilizationWindowSeconds", 0) < 300:
            problems.append(f"{name(so)}: scale-down within 5 minutes")
        if "pollingInterval" not in spec or "cooldownPeriod" not in spec:
            problems.append(f"{name(so)}: say pollingInterval and cooldownPeriod")
        read: set[str] = set()
        for trigger in spec["triggers"]:
            metadata = trigger.get("metadata", {})
            if trigger["type"] != "metrics-api":
                problems.append(f"{name(so)}: a {trigger['type']} trigger")
                continue
            unknown = sorted(set(metadata) - METRICS_API_KEYS)
            if unknown:
                problems.append(f"{name(so)}: metrics-api has no parameter {unknown}")
            if trigger.get("metricType") != "AverageValue":
                problems.append(f"{name(so)}: metricType is not AverageValue")
            problems += fleet_url_problems(docs, so, metadata.get("url", ""))
            location = str(metadata.get("valueLocation", "")).split(".")
            if len(location) != 3 or location[0] != "classes" or location[2] not in FLEET_TARGETS:
                problems.append(f"{name(so)}: valueLocation {'.'.join(location)}")
                continue
            if location[1] != device:
                problems.append(f"{name(so)}: reads class {location[1]}, scales {device} workers")
            wanted = FLEET_TARGETS[location[2]]
            if wanted is not None and metadata.get("targetValue") != wanted:
                problems.append(f"{name(so)}: {location[2]} needs targetValue {wanted!r}")
            read.add(location[2])
        if read != set(FLEET_TARGETS):
            problems.append(f"{name(so)}: reads {sorted(read)}, not {sorted(FLEET_TARGETS)}")
    for w in filter(is_worker, workloads(docs)):
        if name(w) not in scaled:
            problems.append(f"{name(w)}: no ScaledObject")
    return problems


def fleet_url_problems(docs: list[Doc], so: Doc, url: str) -> list[str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").split(".")
    if parts.path != FLEET_PATH or len(host) != 5 or host[2:] != ["svc", "cluster", "local"]:
        return [
            f"{name(so)}: url {url} is not http://SERVICE.NAMESPACE.svc.cluster.local{FLEET_PATH}"
        ]
    if FLEET_PATH not in app_get_routes():
        return [f"{name(so)}: playhead has no GET {FLEET_PATH}"]
    svc = find(docs, "Service", host[0], host[1])
    port = parts.port or 80
    if svc is None or not any(p["port"] == port for p in svc["spec"]["ports"]):
        return [f"{name(so)}: url {url}: no Service {host[0]} in {host[1]} on port {port}"]
    if not any(
        is_playhead(c) and list(c.get("args", []))[:1] == ["serve"]
        for w in workloads(docs)
        if same_namespace(w, svc) and selects(svc["spec"].get("selector") or {}, pod_labels(w))
        for c in containers(w)
    ):
        return [f"{name(so)}: url {url}: Service {host[0]} is not the API's"]
    return []


def test_each_worker_class_is_scaled_on_its_own_demand(docs: list[Doc]) -> None:
    assert scaled_object_problems(docs) == []
    so = find(docs, "ScaledObject", "playhead-worker-cpu", "playhead")
    assert so is not None
    triggers = so["spec"]["triggers"]
    triggers[0]["metadata"]["valueLocation"] = "classes.cuda.desired_workers"
    triggers[1]["metadata"]["valueLocation"] = "classes.cpu.low_slack"
    triggers[1]["metadata"]["url"] = "http://playhead-apl.playhead.svc.cluster.local/api/fleet"
    triggers[0]["metadata"]["targetValu"] = "1"
    so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"][
        "stabilizationWindowSeconds"
    ] = 60
    so["spec"]["fallback"]["replicas"] = 0
    assert scaled_object_problems(docs) == [
        "ScaledObject playhead-worker-cpu: fallback 0 outside 1..20",
        "ScaledObject playhead-worker-cpu: scale-up waits",
        "ScaledObject playhead-worker-cpu: metrics-api has no parameter ['targetValu']",
        "ScaledObject playhead-worker-cpu: reads class cuda, scales cpu workers",
        "ScaledObject playhead-worker-cpu: url http://playhead-apl.playhead.svc.cluster.local"
        "/api/fleet: no Service playhead-apl in playhead on port 80",
        "ScaledObject playhead-worker-cpu: valueLocation classes.cpu.low_slack",
        "ScaledObject playhead-worker-cpu: reads ['desired_workers'], not "
        "['desired_workers', 'low_slack_jobs']",
    ]


def test_keda_targets_exist_and_own_their_replicas(docs: list[Doc]) -> None:
    cuda = find(docs, "ScaledObject", "playhead-worker-cuda", "playhead")
    worker = find(docs, "Deployment", "playhead-worker-cpu", "playhead")
    assert cuda is not None and worker is not None
    cuda["spec"]["scaleTargetRef"]["name"] = "playhead-worker-gpu"
    worker["spec"]["replicas"] = 3
    assert scaled_object_problems(docs) == [
        "Deployment playhead-worker-cpu: sets replicas, which KEDA owns (apply resets it)",
        "ScaledObject playhead-worker-cuda: scaleTargetRef names no Deployment",
        "Deployment playhead-worker-cuda: no ScaledObject",
    ]


def device_class_problems(docs: list[Doc]) -> list[str]:
    """The API plans one queue per device class (``serve --device-classes``): each worker
    Deployment's ``--device`` class is one of them, and each of them has workers."""
    api = find(docs, "Deployment", "playhead-api", "playhead")
    if api is None:
        return ["no Deployment playhead-api"]
    (c,) = containers(api)
    declared = getattr(parse(c["args"], environment(c, docs, "playhead")), "device_classes", None)
    if declared is None:
        return ["playhead-api: no --device-classes"]
    classes = [part.strip() for part in str(declared).split(",")]
    devices = {worker_device(w) for w in workloads(docs) if is_worker(w)}
    problems = [
        f"{device} workers claim from a queue the API does not fill (--device-classes {declared})"
        for device in sorted(str(d) for d in devices - set(classes))
    ]
    problems += [f"class {cls} has no workers" for cls in classes if cls not in devices]
    return problems


def test_the_api_plans_for_exactly_the_worker_classes(docs: list[Doc]) -> None:
    assert device_class_problems(docs) == []
    api = find(docs, "Deployment", "playhead-api", "playhead")
    assert api is not None
    (c,) = api["spec"]["template"]["spec"]["containers"]
    c["args"][c["args"].index("--device-classes") + 1] = "cpu,rocm"
    assert device_class_problems(docs) == [
        "cuda workers claim from a queue the API does not fill (--device-classes cpu,rocm)",
        "class rocm has no workers",
    ]


def redis_problems(docs: list[Doc]) -> list[str]:
    """Redis keeps its append-only file on its claimed volume, and PLAYHEAD_REDIS names its pod
    through the headless Service, on the port that Service serves."""
    sts = find(docs, "StatefulSet", "playhead-redis", "playhead")
    config = find(docs, "ConfigMap", "playhead", "playhead")
    if sts is None or config is None:
        return ["no StatefulSet playhead-redis or ConfigMap playhead"]
    problems = []
    (c,) = containers(sts)
    args = list(c.get("args", []))
    if option(args, "--appendonly") != "yes":
        problems.append("redis: no --appendonly yes")
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if mounts.get(option(args, "--dir") or "") not in claims:
        problems.append(f"redis: --dir {option(args, '--dir')} is not on a claimed volume")
    url = urlsplit(config["data"]["PLAYHEAD_REDIS"])
    pod = f"{sts['metadata']['name']}-0.{sts['spec']['serviceName']}"
    svc = find(docs, "Service", sts["spec"]["serviceName"], "playhead")
    ports = {p["port"] for p in (svc or {}).get("spec", {}).get("ports", [])}
    if url.hostname != pod or url.port not in ports:
        problems.append(f"PLAYHEAD_REDIS {url.geturl()} is not {pod} on {sorted(ports)}")
    return problems


def test_redis_persists_and_is_where_playhead_looks(docs: list[Doc]) -> None:
    assert redis_problems(docs) == []
    sts = find(docs, "StatefulSet", "playhead-redis", "playhead")
    config = find(docs, "ConfigMap", "playhead", "playhead")
    assert sts is not None and config is not None
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    c["args"][c["args"].index("--appendonly") + 1] = "no"
    c["args"][c["args"].index("--dir") + 1] = "/tmp"
    config["data"]["PLAYHEAD_REDIS"] = "redis://playhead-redis:6380/0"
    assert redis_problems(docs) == [
        "redis: no --appendonly yes",
        "redis: --dir /tmp is not on a claimed volume",
        "PLAYHEAD_REDIS redis://playhead-redis:6380/0 is not "
        "playhead-redis-0.playhead-redis on [6379]",
    ]


# ---- playhead's own command line ------------------------------------------------------------


class CommandError(Exception):
    pass


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment while the parser is built (it reads PLAYHEAD_REDIS/STORE)."""
    keys = ("PLAYHEAD_REDIS", "PLAYHEAD_STORE")
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for k in keys:
            os.environ.pop(k, None)
            if k in values:
                os.environ[k] = values[k]
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def parse(args: list[str], env: Mapping[str, str]) -> argparse.Namespace:
    """``playhead ARGS`` as the CLI parses it in a process with ``env``."""
    err = io.StringIO()
    with environ(env), contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        try:
            return _parser().parse_args(args)
        except SystemExit:
            raise CommandError(f"`playhead {' '.join(args)}`: {err.getvalue().strip()}") from None


def command_problems(docs: list[Doc], entrypoint: list[str]) -> list[str]:
    """Every playhead container keeps the image's entrypoint and its args parse, with the
    environment its ConfigMaps and Secrets give it."""
    problems = []
    if entrypoint != ["playhead"]:
        problems.append(f"the image's ENTRYPOINT is {entrypoint}, not ['playhead']")
    for w in workloads(docs):
        for c in filter(is_playhead, containers(w)):
            if "command" in c:
                problems.append(f"{name(w)}: `command` replaces the image's entrypoint")
            env = environment(c, docs, w["metadata"].get("namespace"))
            try:
                parse(list(c.get("args", [])), env)
            except CommandError as e:
                problems.append(f"{name(w)}: {e}")
    return problems


def test_pod_commands_parse_with_playheads_command_line(docs: list[Doc]) -> None:
    dockerfile = Dockerfile.parse(DOCKERFILE.read_text())
    entrypoint = dockerfile.final("cpu", "ENTRYPOINT")
    assert command_problems(docs, entrypoint) == []
    worker = find(docs, "Deployment", "playhead-worker-cpu", "playhead")
    assert worker is not None
    (c,) = worker["spec"]["template"]["spec"]["containers"]
    c["args"][c["args"].index("--lease")] = "--leese"
    (problem,) = command_problems(docs, entrypoint)
    assert "unrecognized arguments: --leese" in problem
    c["args"][c["args"].index("--leese")] = "--lease"
    c["envFrom"] = [e for e in c["envFrom"] if "secretRef" not in e]  # no PLAYHEAD_STORE
    (problem,) = command_problems(docs, entrypoint)
    assert "--store" in problem and "required" in problem


# ---- the image recipe --------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str  # an image, or an earlier stage's name
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, rest)


@dataclass
class Dockerfile:
    args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        logical: list[str] = []
        pending = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if pending and line.startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        args: dict[str, str] = {}
        stages: list[Stage] = []
        for line in logical:
            keyword, _, rest = line.partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            if keyword == "FROM":
                words = rest.split()
                base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
                stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
                stages.append(Stage(stage or str(len(stages)), base))
            elif not stages:
                if keyword == "ARG":
                    key, _, default = rest.partition("=")
                    args[key] = default.strip('"')
            else:
                stages[-1].instructions.append((keyword, rest))
        return cls(args, stages)

    def stage(self, stage_name: str) -> Stage:
        return next(s for s in self.stages if s.name == stage_name)

    def chain(self, stage_name: str) -> list[Stage]:
        """The stage and those it is built on, base first."""
        names = {s.name for s in self.stages}
        out = [self.stage(stage_name)]
        while out[0].base in names:
            out.insert(0, self.stage(out[0].base))
        return out

    def instructions(self, stage_name: str) -> list[tuple[str, str]]:
        return [i for s in self.chain(stage_name) for i in s.instructions]

    def final(self, stage_name: str, keyword: str) -> Any:
        """The last value of ENTRYPOINT / CMD / USER / WORKDIR in a stage's image."""
        values = [rest for k, rest in self.instructions(stage_name) if k == keyword]
        if not values:
            return None
        return json.loads(values[-1]) if keyword in ("ENTRYPOINT", "CMD") else values[-1]

    def env(self, stage_name: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for keyword, rest in self.instructions(stage_name):
            if keyword == "ENV":
                for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                    env[key] = value.strip('"')
        return env


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore's lines, in order: (re-include?, pattern)."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``path`` (relative to the context) reaches the build: the last rule that
    matches it or a folder above it decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    keep = True
    for negate, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            keep = negate
    return keep


@cache
def tracked_files() -> tuple[str, ...]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return tuple(out.splitlines())


def copy_sources(rest: str) -> tuple[dict[str, str], list[str], str]:
    """A COPY's flags, sources and destination."""
    words = json.loads(rest) if rest.startswith("[") else rest.split()
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    paths_ = [w for w in words if not w.startswith("--")]
    return flags, paths_[:-1], paths_[-1]


def dockerfile_problems(dockerfile: Dockerfile, ignore: str, root: Path = ROOT) -> list[str]:
    problems = []
    rules = ignore_rules(ignore)
    names = [s.name for s in dockerfile.stages]
    if names[-1] != TARGETS[0] or not set(TARGETS) <= set(names):
        problems.append(f"stages {names}: want {list(TARGETS)}, {TARGETS[0]} last (the default)")
        return problems
    for i, stage in enumerate(dockerfile.stages):
        for keyword, rest in stage.instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            flags, sources, _ = copy_sources(rest)
            if "from" in flags:
                if flags["from"] not in names[:i]:
                    problems.append(f"COPY --from={flags['from']}: no earlier stage")
                else:
                    built = dockerfile.final(flags["from"], "WORKDIR") or "/"
                    for src in sources:
                        if not src.startswith(built.rstrip("/") + "/"):
                            problems.append(f"COPY --from: {src} is outside {built}")
                continue
            for src in sources:
                if not (root / src).exists():
                    problems.append(f"COPY {src}: not in the repository")
                elif not in_context(src, rules):
                    problems.append(f"COPY {src}: .dockerignore leaves it out of the context")
                else:
                    left_out = [
                        f
                        for f in tracked_files()
                        if f.startswith(src.rstrip("/") + "/") and not in_context(f, rules)
                    ]
                    if left_out:
                        problems.append(f"COPY {src}: .dockerignore leaves out {left_out[:3]}")
    for target in TARGETS:
        chain = dockerfile.chain(target)
        base = chain[0].base
        if not (base.startswith("python:") and "slim" in base):
            problems.append(f"{target}: built on {base!r}, not a python slim image")
        user = dockerfile.final(target, "USER")
        if user is None or user.split(":")[0] in ("root", "0"):
            problems.append(f"{target}: runs as {user or 'root'}")
    return problems


def image_layout_problems(dockerfile: Dockerfile) -> list[str]:
    """The image is laid out like a source checkout, as the server expects: the editor's
    files in web/ beside src/, hls.js in web/node_modules, the package installed in place; the
    weights where paths.py looks, fetched at build."""
    problems = []
    into: dict[str, str] = {}  # repository path (or stage:path) -> path in the image
    workdir = "/"
    for keyword, rest in dockerfile.instructions(TARGETS[0]):
        if keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / rest)
        if keyword == "COPY":
            flags, sources, dest = copy_sources(rest)
            for src in sources:
                key = f"{flags['from']}:{src}" if "from" in flags else src
                target = PurePosixPath(workdir) / dest
                into[key] = str(target if len(sources) == 1 else target / PurePosixPath(src).name)
    src_at, webdir = into.get("src"), into.get("web")
    web_rel = web.WEB.relative_to(ROOT).as_posix()
    if src_at is None or webdir is None:
        return [f"src and web are not both copied: {into}"]
    if PurePosixPath(webdir) != PurePosixPath(src_at).parent / web_rel:
        problems.append(f"web/ at {webdir}, but the server looks beside src/ ({src_at})")
    hls = web.HLS.relative_to(web.WEB).parts[0]  # node_modules
    if not any(k.startswith("web:") and v == f"{webdir}/{hls}" for k, v in into.items()):
        problems.append(f"nothing puts the web stage's {hls} at {webdir}/{hls}")
    runs = [rest for keyword, rest in dockerfile.instructions(TARGETS[0]) if keyword == "RUN"]
    if not any(re.search(r"pip install (-e|--editable) \.", r) for r in runs):
        problems.append("the package is not installed in place (pip install -e .)")
    home = dockerfile.env(TARGETS[0]).get("PLAYHEAD_HOME")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLAYHEAD_HOME", home or "")
        if home is None or paths.models_dir() != Path(home) / "models":
            problems.append("PLAYHEAD_HOME, which paths.py reads, is not set")
    if not any("playhead models fetch" in r for r in runs):
        problems.append("the model weights are not fetched at build")
    return problems


def test_the_image_copies_only_what_is_in_the_context() -> None:
    dockerfile = Dockerfile.parse(DOCKERFILE.read_text())
    ignore = DOCKERIGNORE.read_text()
    assert dockerfile_problems(dockerfile, ignore) == []
    assert not in_context(".venv/bin/python", ignore_rules(ignore))
    assert not in_context("web/node_modules/hls.js/dist/hls.mjs", ignore_rules(ignore))
    assert not in_context("src/playhead/__pycache__/cli.cpython-311.pyc", ignore_rules(ignore))
    broken = DOCKERFILE.read_text().replace("COPY src ./src", "COPY src tests ./")
    broken = broken.replace("--from=web", "--from=npm", 1)
    broken = broken.replace(
        "USER 10001:10001\n\n# ---- the default", "USER root\n\n# ---- the default"
    )
    assert dockerfile_problems(Dockerfile.parse(broken), ignore) == [
        "COPY tests: .dockerignore leaves it out of the context",
        "COPY --from=npm: no earlier stage",
        "cuda: runs as root",
    ]
    (problem,) = dockerfile_problems(dockerfile, ignore.replace("!web\n", "!web\nweb/js\n"))
    assert problem.startswith("COPY web: .dockerignore leaves out ['web/js/")


def test_the_image_is_laid_out_as_the_server_expects() -> None:
    text = DOCKERFILE.read_text()
    assert image_layout_problems(Dockerfile.parse(text)) == []
    broken = text.replace("COPY web ./web", "COPY web ./static").replace(
        "pip install -e .", "pip install ."
    )
    broken = broken.replace("PLAYHEAD_HOME=/opt/playhead", "PLAYHEAD_DATA=/opt/playhead")
    assert image_layout_problems(Dockerfile.parse(broken)) == [
        "web/ at /app/static, but the server looks beside src/ (/app/src)",
        "nothing puts the web stage's node_modules at /app/static/node_modules",
        "the package is not installed in place (pip install -e .)",
        "PLAYHEAD_HOME, which paths.py reads, is not set",
    ]


def test_the_images_commands_parse_with_playheads_command_line() -> None:
    dockerfile = Dockerfile.parse(DOCKERFILE.read_text())
    for target in TARGETS:
        assert dockerfile.final(target, "ENTRYPOINT") == ["playhead"]
        args = parse(dockerfile.final(target, "CMD"), {})
        assert args.func.__name__ == "_serve"
        assert (args.host, args.port) == ("0.0.0.0", 8000)
    with pytest.raises(CommandError, match="invalid choice: 'serv'"):
        parse(["serv", "--port", "8000"], {})
