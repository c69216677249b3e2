"""Checks of the deployment files under infra/: each returns a list of problems (empty: fine).

Pure functions over parsed documents, so a test can run them on the real files and on
deliberately broken copies. They read vendored schemas; nothing here touches the network.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from pydantic import BaseModel

from vidra.config import Settings

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
KUBERNETES_VERSION = "1.30"  # oldest Kubernetes the manifests target
CRD_SCHEMAS = {
    ("ray.io/v1", "RayCluster"): K8S / "schemas" / "raycluster-ray-v1.json",
    ("ray.io/v1", "RayJob"): K8S / "schemas" / "rayjob-ray-v1.json",
}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with no variable set: the default (or empty)."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def setting_problem(name: str) -> str | None:
    """Why ``name`` (``VIDRA_A__B``) names no field of `Settings`, or None when it does.

    ``VIDRA_A__B`` is field ``a`` of `Settings`, then field ``b`` of that section (pydantic
    -settings matches case-insensitively); a key below a ``dict`` field is accepted.
    """
    if not name.startswith("VIDRA_"):
        return f"{name}: not a VIDRA_ variable"
    model: type[BaseModel] = Settings
    parts = name.removeprefix("VIDRA_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return f"{name}: {model.__name__} has no field {part!r}"
        annotation = field.annotation
        if depth == len(parts) - 1:
            return None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif getattr(annotation, "__origin__", None) is dict:
            return None
        else:
            return f"{name}: {model.__name__}.{part} is not a section (no nested fields)"
    return None


def settings_problems(env: Mapping[str, str]) -> list[str]:
    """Unknown ``VIDRA_*`` names in ``env``, then whether `Settings` accepts the values."""
    vidra = {k: v for k, v in env.items() if k.startswith("VIDRA_")}
    problems = [p for p in (setting_problem(k) for k in vidra) if p]
    if problems:
        return problems
    nested: dict[str, Any] = {}
    for key, value in vidra.items():
        *sections, leaf = key.removeprefix("VIDRA_").lower().split("__")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    try:
        Settings.model_validate(nested)
    except ValueError as exc:
        problems.append(f"Settings rejects the values: {exc}")
    return problems


# ---- compose -------------------------------------------------------------------------------


def compose_schema_problems(compose: Mapping[str, Any]) -> list[str]:
    """Validation errors against the vendored Compose Specification schema."""
    schema = json.loads((INFRA / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]


def _named_volumes(service: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(source, target) of each volume mount; bind mounts start with '.' or '/'."""
    for mount in service.get("volumes", []):
        if isinstance(mount, str):
            source, _, rest = mount.partition(":")
            yield source, rest.split(":")[0]
        else:
            yield str(mount.get("source", "")), str(mount["target"])


def compose_reference_problems(compose: Mapping[str, Any], base: Path = INFRA) -> list[str]:
    """depends_on, volumes and networks that name nothing defined (or no file on disk)."""
    services: Mapping[str, Any] = compose.get("services", {})
    volumes = set(compose.get("volumes") or {})
    networks = set(compose.get("networks") or {}) | {"default"}
    problems = []
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep, cond in (deps if isinstance(deps, dict) else {d: {} for d in deps}).items():
            if dep not in services:
                problems.append(f"{name}: depends_on undefined service {dep!r}")
            elif cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} healthy, which has no healthcheck")
        for source, _ in _named_volumes(svc):
            if source.startswith((".", "/")):
                if not (base / source).exists():
                    problems.append(f"{name}: bind mount {source!r} does not exist")
            elif source not in volumes:
                problems.append(f"{name}: volume {source!r} is not defined")
        nets = svc.get("networks", [])
        for net in nets if isinstance(nets, list) else list(nets):
            if net not in networks:
                problems.append(f"{name}: network {net!r} is not defined")
    return problems


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment (list or mapping form), interpolated with defaults."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Named volume -> mount path of one service."""
    return {s: t for s, t in _named_volumes(service) if not s.startswith((".", "/"))}


def command_flags(command: Any) -> dict[str, str]:
    """``--flag=value`` / ``--flag`` items of a command (list or string) as a mapping."""
    items = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    flags = {}
    for item in items:
        if item.startswith("--"):
            key, _, value = item[2:].partition("=")
            flags[key] = interpolate(value)
    return flags


# ---- Dockerfiles ---------------------------------------------------------------------------


def dockerfile_problems(text: str, extras: set[str]) -> list[str]:
    """What an image definition misses: ffmpeg in the final stage, torch installed before the
    project (same stage) with ``extras``, a non-root USER, ``ENTRYPOINT ["vidra"]``."""
    import dockerfile

    stages: list[list[Any]] = []
    for cmd in dockerfile.parse_string(text):
        if cmd.cmd == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append(cmd)
    if not stages:
        return ["no FROM"]
    problems = []
    runs = [" ".join(c.value) for stage in stages for c in stage if c.cmd == "RUN"]
    final = stages[-1]
    final_runs = [" ".join(c.value) for c in final if c.cmd == "RUN"]
    if not any(re.search(r"apt-get install[^&;]*\bffmpeg\b", r) for r in final_runs):
        problems.append("the final stage does not apt-get install ffmpeg")
    torch_at = [i for i, r in enumerate(runs) if re.search(r"pip install[^&;]*\btorch==", r)]
    project = re.compile(r"pip install[^&;]*'\.\[([a-z,]+)\]'")
    project_at = [i for i, r in enumerate(runs) if project.search(r)]
    if not torch_at or not project_at:
        problems.append("no pinned torch install or no project install ('.[extras]')")
    elif torch_at[0] >= project_at[0]:
        problems.append("torch is installed after the project")
    else:
        match = project.search(runs[project_at[0]])
        missing = extras - set(match.group(1).split(",")) if match else extras
        if missing:
            problems.append(f"the project install lacks extras {sorted(missing)}")
    users = [c.value[0] for c in final if c.cmd == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the final stage runs as root (no non-root USER)")
    entry = [c for c in final if c.cmd == "ENTRYPOINT"]
    if not entry or not entry[-1].json or list(entry[-1].value) != ["vidra"]:
        problems.append('ENTRYPOINT is not ["vidra"] (exec form)')
    return problems


def copy_sources(text: str) -> list[str]:
    """Build-context paths that COPY/ADD read (not --from another stage)."""
    import dockerfile

    sources = []
    for cmd in dockerfile.parse_string(text):
        if cmd.cmd in {"COPY", "ADD"} and not any(f.startswith("--from") for f in cmd.flags):
            sources.extend(cmd.value[:-1])
    return sources


# ---- Kubernetes ----------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema that rejects unknown fields, as the API server's strict field validation
    (kubectl's default) does: additionalProperties false wherever properties are listed and
    unknown fields are not preserved. CEL rules (x-kubernetes-validations) are not run."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads(CRD_SCHEMAS[(api_version, kind)].read_text())
    root = copy.deepcopy(_strict(schema))
    root["properties"]["apiVersion"] = {"const": api_version}
    root["properties"]["kind"] = {"const": kind}
    root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft4Validator(root)


def k8s_schema_problems(obj: Mapping[str, Any]) -> list[str]:
    """Schema errors of one Kubernetes object: core kinds with kubernetes-validate (strict),
    KubeRay kinds with the vendored CRD openAPIV3Schema (made strict)."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key in CRD_SCHEMAS:
        errors = _crd_validator(*key).iter_errors(obj)
        return [f"{key[1]} {'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{key[1]} {'/'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def pod_templates(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod templates of a RayCluster, or of a RayJob's cluster."""
    spec = obj["spec"].get("rayClusterSpec", obj["spec"])
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [g["template"] for g in groups]


def k8s_reference_problems(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ray pods that read ConfigMaps, Secret keys or claims not defined here, set VIDRA_* names
    that are no settings, or take the database URL from anywhere but a Secret."""
    defined = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    problems = []
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            problems += settings_problems(obj.get("data", {}))
        if obj["kind"] not in {"RayCluster", "RayJob"}:
            continue
        for template in pod_templates(obj):
            spec = template["spec"]
            for vol in spec.get("volumes", []):
                claim = vol.get("persistentVolumeClaim", {}).get("claimName")
                if claim and ("PersistentVolumeClaim", claim) not in defined:
                    problems.append(f"{obj['kind']}: claim {claim!r} is not defined")
            for ctr in spec["containers"]:
                problems += _container_problems(obj["kind"], ctr, defined)
    return problems


def _container_problems(
    kind: str, ctr: Mapping[str, Any], defined: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[str]:
    problems = []
    for src in ctr.get("envFrom", []):
        name = src.get("configMapRef", {}).get("name")
        if name and ("ConfigMap", name) not in defined:
            problems.append(f"{kind}/{ctr['name']}: ConfigMap {name!r} is not defined")
    names = set()
    for var in ctr.get("env", []):
        names.add(var["name"])
        if var["name"].startswith("VIDRA_") and (p := setting_problem(var["name"])):
            problems.append(f"{kind}/{ctr['name']}: {p}")
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = defined.get(("Secret", ref["name"]))
            keys = set((secret or {}).get("stringData", {})) | set((secret or {}).get("data", {}))
            if ref["key"] not in keys:
                problems.append(f"{kind}/{ctr['name']}: no Secret {ref['name']}/{ref['key']}")
        elif var["name"] == "VIDRA_DATABASE_URL":
            problems.append(f"{kind}/{ctr['name']}: VIDRA_DATABASE_URL not from a Secret")
    if "VIDRA_DATABASE_URL" not in names:
        problems.append(f"{kind}/{ctr['name']}: no VIDRA_DATABASE_URL")
    return problems
