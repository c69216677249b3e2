"""The deployment files under infra/ are consistent with each other and with vidra, offline:
compose (Compose Specification schema, references, VIDRA_* names, shared volumes, Ray
topology), the images (ffmpeg, torch before the project, non-root, ENTRYPOINT, hadolint), the
Kubernetes objects (core schemas via kubernetes-validate, KubeRay CRD schemas vendored), and
that each check fails on a deliberately broken copy. No Docker engine or cluster is needed.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.infra import checks
from tests.unit.infra.checks import INFRA, K8S, ROOT
from vidra.cli import build_parser

DOCKERFILES = {
    "Dockerfile": {"decord", "torchcodec", "postgres", "ray", "train"},
    "Dockerfile.gpu": {"decord", "torchcodec", "postgres", "ray", "train", "gpu"},
}
SHARED_BY_RAY = ("vidra", "ray-head", "ray-worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((INFRA / "compose.yaml").read_text()))


@pytest.fixture(scope="module")
def k8s_objects() -> list[dict[str, Any]]:
    docs = [d for p in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return [d for d in docs if d]


def _tool(name: str) -> str | None:
    """A linter on PATH or installed next to this interpreter (the dev extra's wheels)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(compose["services"][name])


# ---- compose -------------------------------------------------------------------------------


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert checks.compose_schema_problems(compose) == []


def test_compose_references_are_defined(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "mlflow", "ray-head", "ray-worker", "vidra"}
    assert checks.compose_reference_problems(compose) == []


def test_compose_waits_for_healthy_servers(compose: dict[str, Any]) -> None:
    deps = _service(compose, "vidra")["depends_on"]
    for server in ("postgres", "mlflow", "ray-head"):
        assert deps[server]["condition"] == "service_healthy"
    assert _service(compose, "mlflow")["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["postgres", "mlflow", "ray-head", "ray-worker", "vidra"])
def test_compose_vidra_variables_are_settings(compose: dict[str, Any], name: str) -> None:
    assert checks.settings_problems(checks.service_env(_service(compose, name))) == []


def test_compose_wires_vidra_to_the_servers(compose: dict[str, Any]) -> None:
    env = checks.service_env(_service(compose, "vidra"))
    assert env["VIDRA_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["VIDRA_DATABASE_URL"]
    assert env["VIDRA_MLFLOW__TRACKING_URI"] == "http://mlflow:5000"
    assert env["VIDRA_RUNNER__EXECUTOR"] == "ray"
    head = checks.command_flags(_service(compose, "ray-head")["command"])
    assert env["VIDRA_RUNNER__RAY_ADDRESS"] in {
        f"ray-head:{head['port']}",
        f"ray://ray-head:{head['ray-client-server-port']}",
    }


def test_compose_mlflow_is_backed_by_postgres(compose: dict[str, Any]) -> None:
    mlflow = _service(compose, "mlflow")
    flags = checks.command_flags(mlflow["command"])
    assert flags["backend-store-uri"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in flags["backend-store-uri"]
    assert "serve-artifacts" in flags and flags["port"] == "5000"
    artifacts = flags["artifacts-destination"].removeprefix("file://")
    assert artifacts in checks.mounts(mlflow).values()  # a named volume, not the container


def test_compose_ray_head_and_worker(compose: dict[str, Any]) -> None:
    head = checks.command_flags(_service(compose, "ray-head")["command"])
    worker = checks.command_flags(_service(compose, "ray-worker")["command"])
    assert "head" in head and "block" in head and "block" in worker
    assert worker["address"] == f"ray-head:{head['port']}"
    assert json.loads(worker["resources"]) == {"worker_node": 1}


def test_compose_shares_videos_and_data_at_one_path(compose: dict[str, Any]) -> None:
    services = [_service(compose, n) for n in SHARED_BY_RAY]
    for volume in ("videos", "vidra-data"):
        paths = {checks.mounts(s).get(volume) for s in services}
        assert len(paths) == 1 and None not in paths, (volume, paths)
    data_dirs = {checks.service_env(s)["VIDRA_DATA_DIR"] for s in services}
    assert data_dirs == {checks.mounts(services[0])["vidra-data"]}


def test_compose_vidra_command_is_a_vidra_command(compose: dict[str, Any]) -> None:
    build_parser().parse_args(_service(compose, "vidra")["command"])


# ---- images --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_installs_what_vidra_needs(name: str) -> None:
    text = (INFRA / "docker" / name).read_text()
    assert checks.dockerfile_problems(text, DOCKERFILES[name]) == []


def test_cpu_image_pins_torch_as_the_makefile_does() -> None:
    pins = re.findall(r"(torch(?:vision)?)==([\d.]+)", (ROOT / "Makefile").read_text())
    text = (INFRA / "docker" / "Dockerfile").read_text()
    for package, version in pins:
        assert f"ARG {package.upper()}_VERSION={version}" in text, (package, version)
    assert len(pins) == 2


def test_gpu_image_builds_on_cuda() -> None:
    text = (INFRA / "docker" / "Dockerfile.gpu").read_text()
    [base] = re.findall(r"^ARG CUDA_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert base.startswith("nvidia/cuda:")
    assert "FROM ${CUDA_IMAGE} AS runtime" in text


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_copies_exist_and_are_not_ignored(name: str) -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in checks.copy_sources((INFRA / "docker" / name).read_text()):
        assert (ROOT / source).exists(), source
        assert source not in ignored, source


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "demo_out", ".mypy_cache", ".ruff_cache", ".pytest_cache"} <= ignored


@pytest.mark.skipif(_tool("hadolint") is None, reason="hadolint not installed (dev extra)")
def test_dockerfiles_pass_hadolint() -> None:
    files = [str(INFRA / "docker" / n) for n in sorted(DOCKERFILES)]
    config = str(INFRA / "docker" / ".hadolint.yaml")
    cmd = [str(_tool("hadolint")), "--no-color", "--config", config, *files]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(_tool("shellcheck") is None, reason="shellcheck not installed (dev extra)")
def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in (INFRA / "scripts").glob("*.sh"))
    cmd = [str(_tool("shellcheck")), "-S", "warning", *scripts]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---- Kubernetes ----------------------------------------------------------------------------


def test_k8s_has_the_expected_objects(k8s_objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in k8s_objects}
    assert kinds >= {"RayCluster", "RayJob", "Secret", "ConfigMap", "PersistentVolumeClaim"}


def test_k8s_objects_match_their_schemas(k8s_objects: list[dict[str, Any]]) -> None:
    for obj in k8s_objects:
        assert checks.k8s_schema_problems(obj) == [], obj["metadata"]["name"]


def test_k8s_references_and_settings(k8s_objects: list[dict[str, Any]]) -> None:
    assert checks.k8s_reference_problems(k8s_objects) == []


def test_k8s_worker_groups_carry_worker_node(k8s_objects: list[dict[str, Any]]) -> None:
    for obj in (o for o in k8s_objects if o["kind"] in {"RayCluster", "RayJob"}):
        spec = obj["spec"].get("rayClusterSpec", obj["spec"])
        assert all(g["resources"] == {"worker_node": "1"} for g in spec["workerGroupSpecs"])


def test_rayjob_runs_one_retraining_cycle(k8s_objects: list[dict[str, Any]]) -> None:
    [job] = [o for o in k8s_objects if o["kind"] == "RayJob"]
    assert job["spec"]["entrypoint"] == "vidra retrain --algo grpo"
    args = build_parser().parse_args(job["spec"]["entrypoint"].split()[1:])
    assert (args.command, args.algo) == ("retrain", "grpo")
    assert job["spec"]["shutdownAfterJobFinishes"] is True


# ---- broken copies fail --------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split("/")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return mutate


COMPOSE_BREAKS = {  # name: (mutation, a phrase the problems must contain)
    "unknown service key": (_set("services/postgres/heathcheck", {}), "'heathcheck'"),
    "command item is a mapping": (
        _set("services/ray-worker/command/3", {"--resources": 1}),
        "services/ray-worker/command",
    ),
    "depends_on undefined": (
        _set("services/vidra/depends_on/redis", {"condition": "service_started"}),
        "undefined service 'redis'",
    ),
    "depends_on healthy without healthcheck": (
        _set("services/vidra/depends_on/ray-worker", {"condition": "service_healthy"}),
        "ray-worker healthy, which has no healthcheck",
    ),
    "undefined volume": (_set("services/vidra/volumes/0", "vidoes:/videos"), "'vidoes'"),
    "undefined network": (_set("services/mlflow/networks", ["frontend"]), "'frontend'"),
    "env typo": (
        _set("services/vidra/environment/VIDRA_MLFLOW__TRACKNG_URI", "http://m"),
        "no field 'trackng_uri'",
    ),
    "bad setting value": (
        _set("services/vidra/environment/VIDRA_RUNNER__EXECUTOR", "k8s"),
        "runner.executor",
    ),
}


@pytest.mark.parametrize("name", sorted(COMPOSE_BREAKS))
def test_a_broken_compose_file_fails(compose: dict[str, Any], name: str) -> None:
    mutate, phrase = COMPOSE_BREAKS[name]
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = checks.compose_schema_problems(broken) + checks.compose_reference_problems(broken)
    for svc in broken["services"].values():
        problems += checks.settings_problems(checks.service_env(svc))
    assert any(phrase in p for p in problems), problems


K8S_BREAKS = {  # name: (kind, mutation, a phrase the problems must contain)
    "RayCluster field typo": ("RayCluster", _set("spec/workerGroupSpec", []), "'workerGroupSpec'"),
    "RayCluster replicas not an int": (
        "RayCluster",
        _set("spec/workerGroupSpecs/0/replicas", "2"),
        "is not of type 'integer'",
    ),
    "RayJob pod field typo": (
        "RayJob",
        _set("spec/rayClusterSpec/headGroupSpec/template/spec/containers/0/envform", []),
        "'envform' was unexpected",
    ),
    "RayJob kind misspelt": ("RayJob", _set("kind", "RayJobs"), "Couldn't find schema"),
    "Secret field typo": ("Secret", _set("stringdata", {"database-url": "x"}), "'stringdata'"),
    "ConfigMap data not strings": (
        "ConfigMap",
        _set("data/VIDRA_RUNNER__WORKERS", 2),
        "is not of type 'string'",
    ),
    "ConfigMap setting typo": (
        "ConfigMap",
        _set("data/VIDRA_RUNER__EXECUTOR", "ray"),
        "no field 'runer'",
    ),
    "secretKeyRef to a missing key": (
        "RayCluster",
        _set(
            "spec/headGroupSpec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/key",
            "db-url",
        ),
        "no Secret vidra-secrets/db-url",
    ),
    "database URL in plain text": (
        "RayJob",
        _set(
            "spec/rayClusterSpec/headGroupSpec/template/spec/containers/0/env/0",
            {"name": "VIDRA_DATABASE_URL", "value": "postgresql+psycopg://u:p@h/db"},
        ),
        "VIDRA_DATABASE_URL not from a Secret",
    ),
    "claim not defined": (
        "RayCluster",
        _set("spec/headGroupSpec/template/spec/volumes/0/persistentVolumeClaim/claimName", "v"),
        "claim 'v' is not defined",
    ),
}


@pytest.mark.parametrize("name", sorted(K8S_BREAKS))
def test_a_broken_k8s_manifest_fails(k8s_objects: list[dict[str, Any]], name: str) -> None:
    kind, mutate, phrase = K8S_BREAKS[name]
    broken = copy.deepcopy(k8s_objects)
    target = next(o for o in broken if o["kind"] == kind)
    mutate(target)
    problems = checks.k8s_schema_problems(target)
    if target["kind"] in {"RayCluster", "RayJob", "ConfigMap"}:
        problems += checks.k8s_reference_problems(broken)
    assert any(phrase in p for p in problems), problems


DOCKERFILE_BREAKS = {  # name: (text, replacement, the problem)
    "no ffmpeg": (
        "ffmpeg postgresql-client",
        "postgresql-client",
        "the final stage does not apt-get install ffmpeg",
    ),
    "runs as root": (
        "USER 1000:1000",
        "USER root",
        "the final stage runs as root (no non-root USER)",
    ),
    "shell-form entrypoint": (
        'ENTRYPOINT ["vidra"]',
        "ENTRYPOINT vidra",
        'ENTRYPOINT is not ["vidra"] (exec form)',
    ),
    "missing extras": (
        "'.[decord,torchcodec,postgres,ray,train]'",
        "'.[decord,postgres,ray]'",
        "the project install lacks extras ['torchcodec', 'train']",
    ),
}


@pytest.mark.parametrize("name", sorted(DOCKERFILE_BREAKS))
def test_a_broken_dockerfile_fails(name: str) -> None:
    text = (INFRA / "docker" / "Dockerfile").read_text()
    old, new, problem = DOCKERFILE_BREAKS[name]
    assert old in text
    assert checks.dockerfile_problems(text.replace(old, new), DOCKERFILES["Dockerfile"]) == [
        problem
    ]


def test_a_dockerfile_installing_torch_after_the_project_fails() -> None:
    text = "\n".join(
        [
            "FROM python:3.11-slim",
            "RUN apt-get update && apt-get install -y ffmpeg",
            "COPY . /src",
            "RUN pip install '.[decord,torchcodec,postgres,ray,train]'",
            "RUN pip install torch==2.14.1 torchvision==0.29.1",
            "USER 1000",
            'ENTRYPOINT ["vidra"]',
        ]
    )
    assert checks.dockerfile_problems(text, DOCKERFILES["Dockerfile"]) == [
        "torch is installed after the project"
    ]
