"""`infra/scripts/local_cluster.sh up|down` for real: PostgreSQL, an MLflow server backed by
it, a Ray head and a `worker_node` Ray node on loopback; `down` leaves no port or process.

One cluster for the module (about 30 s to start on 2 cores); the last test takes it down. Its
first Ray head is given a node-manager port another process holds, as an outgoing connection
did in CI, so `up` has to see that head die and start Ray again on new ports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "local_cluster.sh"
EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)$")
RAY_FATAL = re.compile(r"^\[\S+ \S+ [CF] ")
RAY_PROBE = """
import json, os, ray
ray.init(address=os.environ["RAY_ADDRESS"], include_dashboard=False, log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]

@ray.remote(resources={"worker_node": 1}, num_cpus=0)
def where() -> str:
    return ray.get_runtime_context().get_node_id()

print(json.dumps({"nodes": [[n["NodeID"], n["NodeManagerAddress"], n["Resources"]]
                            for n in nodes], "task_node": ray.get(where.remote(), timeout=60)}))
"""


# Stands in for infra/scripts/free_ports.py (VIDRA_CLUSTER_FREE_PORTS): the first call for
# Ray's 15 ports puts TAKEN_PORT in the node manager's place (the 6th, in local_cluster.sh's
# order), once.
TAKING_PICKER = """#!{python}
import os, sys
from pathlib import Path
sys.path.insert(0, {scripts!r})
from free_ports import free_ports
n = int(sys.argv[1])
ports = free_ports(n)
flag = Path(os.environ["TAKEN_FLAG"])
if n == 15 and not flag.exists():
    flag.write_text("given")
    ports[5] = int(os.environ["TAKEN_PORT"])
print(" ".join(map(str, ports)))
"""


class Cluster:
    """What `up` printed, and where the script keeps its state."""

    def __init__(
        self, exports: dict[str, str], stdout: str, stderr: str, env: dict[str, str]
    ) -> None:
        self.exports = exports
        self.stdout = stdout
        self.stderr = stderr
        self.env = env  # the environment `up` ran in (its TMPDIR holds the default-dir record)
        self.dir = Path(exports["VIDRA_CLUSTER_DIR"])
        self.state = dict(
            line.split("=", 1) for line in (self.dir / "state.env").read_text().splitlines()
        )


def _script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env
    )


def _kept_logs(tmp: Path, lines: int = 15) -> str:
    """The end of each log a failed `up` kept in its state dir (before the fixture removes it)."""
    record = tmp / "vidra-local-cluster.last"
    if not record.exists():
        return ""
    state = Path(record.read_text().strip())
    logs = [*sorted(state.glob("*.log")), *sorted(state.glob("ray-logs*/*.err")),
            *sorted(state.glob("ray-logs*/raylet*.out"))]  # fmt: skip
    parts = []
    for log in logs:
        text = log.read_text(errors="replace").splitlines()
        # Ray's fatal lines ("[date time C pid tid] ...") sit above a stack trace the tail shows
        fatal = [line[:600] for line in text if RAY_FATAL.match(line)][:3]
        parts.append(f"\n--- {log.relative_to(state)} ---\n" + "\n".join(fatal + text[-lines:]))
    return "".join(parts)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # No DIR and no VIDRA_CLUSTER_DIR: `up` makes a temp dir under TMPDIR and records it there,
    # so a plain `down` finds it. A short private TMPDIR: Ray's unix socket paths are bounded.
    tmp = Path(tempfile.mkdtemp(prefix="vc-"))
    tmp.chmod(0o755)  # PostgreSQL runs as the 'postgres' user when the tests run as root
    picker = tmp / "taking_picker.py"
    picker.write_text(TAKING_PICKER.format(python=sys.executable, scripts=str(SCRIPT.parent)))
    picker.chmod(0o755)
    taken = socket.socket()  # a port in use, as an outgoing connection's local port would be
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = {k: v for k, v in os.environ.items() if k not in {"VIDRA_CLUSTER_DIR", "RAY_ADDRESS"}}
    env |= {"VENV": sys.prefix, "TMPDIR": str(tmp), "VIDRA_CLUSTER_FREE_PORTS": str(picker)}
    env |= {"TAKEN_PORT": str(taken.getsockname()[1]), "TAKEN_FLAG": str(tmp / "taken")}
    try:
        with taken:
            out = _script(["up"], env)
        assert out.returncode == 0, out.stderr[-4000:] + _kept_logs(tmp)
        exports = {m[1]: m[2] for m in map(EXPORT.match, out.stdout.splitlines()) if m}
        yield Cluster(exports, out.stdout, out.stderr, env)
    finally:
        record = tmp / "vidra-local-cluster.last"
        if record.exists() and Path(record.read_text().strip()).exists():
            _script(["down", record.read_text().strip()], env)
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_up_prints_only_exports(cluster: Cluster) -> None:
    lines = cluster.stdout.splitlines()
    assert lines and all(EXPORT.match(line) for line in lines), lines
    assert set(cluster.exports) >= {
        "VIDRA_DATABASE_URL",
        "VIDRA_MLFLOW__TRACKING_URI",
        "VIDRA_RUNNER__EXECUTOR",
        "VIDRA_RUNNER__RAY_ADDRESS",
        "VIDRA_CLUSTER_DIR",
        "RAY_ADDRESS",
    }
    assert cluster.exports["VIDRA_RUNNER__EXECUTOR"] == "ray"
    assert cluster.exports["VIDRA_RUNNER__RAY_ADDRESS"] == cluster.exports["RAY_ADDRESS"]
    recorded = Path(cluster.env["TMPDIR"]) / "vidra-local-cluster.last"
    assert recorded.read_text().strip() == str(cluster.dir)


def test_up_starts_ray_again_when_a_node_dies_on_a_taken_port(cluster: Cluster) -> None:
    # the first head's raylet could not bind its node-manager port and died; `ray status`
    # answered before that (the GCS was up), so only waiting for the node to join catches it
    assert (Path(cluster.env["TMPDIR"]) / "taken").exists()  # the taken port was handed out
    assert "a Ray node exited during start-up; starting Ray once more" in cluster.stderr
    assert "Failed to start the grpc server" in cluster.stderr  # its fatal line, shown
    assert f"The specified port is {cluster.env['TAKEN_PORT']}" in cluster.stderr
    assert (cluster.dir / "ray-head.first.log").exists()
    assert (cluster.dir / "ray-logs.first" / "raylet.err").exists()
    heads = re.findall(r"Ray head on \S+:(\d+)", cluster.stderr)
    assert len(heads) == 2 and heads[0] != heads[1]  # the second on new ports
    assert cluster.exports["RAY_ADDRESS"].endswith(f":{heads[1]}")


def test_postgres_accepts_the_printed_url(cluster: Cluster) -> None:
    import psycopg

    with psycopg.connect(_pg_dsn(cluster.exports["VIDRA_DATABASE_URL"])) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("vidra",)
        assert conn.info.host == "127.0.0.1"


def test_mlflow_server_keeps_experiments_in_postgres(cluster: Cluster) -> None:
    import mlflow
    import psycopg

    uri = cluster.exports["VIDRA_MLFLOW__TRACKING_URI"]
    with urllib.request.urlopen(uri + "/health", timeout=10) as resp:
        assert resp.status == 200
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = f"local-cluster-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(name))
    client.log_text(run.info.run_id, "hello", "note.txt")
    client.set_terminated(run.info.run_id)
    mlflow_db = cluster.exports["VIDRA_DATABASE_URL"].rsplit("/", 1)[0] + "/mlflow"
    with psycopg.connect(_pg_dsn(mlflow_db)) as conn:
        rows = conn.execute("SELECT name FROM experiments WHERE name = %s", (name,)).fetchall()
    assert rows == [(name,)]
    stored = list((cluster.dir / "mlflow" / "artifacts").rglob("note.txt"))
    assert [p.read_text() for p in stored] == ["hello"]  # proxied into the local artifact dir


def test_ray_has_a_head_and_a_worker_node(cluster: Cluster) -> None:
    env = {**os.environ, "RAY_ADDRESS": cluster.exports["RAY_ADDRESS"], "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run(
        [sys.executable, "-c", RAY_PROBE], capture_output=True, text=True, timeout=180, env=env
    )
    assert out.returncode == 0, out.stderr[-4000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    nodes = probe["nodes"]
    assert len(nodes) == 2
    assert {addr for _, addr, _ in nodes} <= {"127.0.0.2", "127.0.0.1"}  # loopback only
    workers = [node_id for node_id, _, res in nodes if res.get("worker_node") == 1.0]
    assert len(workers) == 1
    assert probe["task_node"] == workers[0]


def _ports(cluster: Cluster) -> list[tuple[str, int]]:
    ray_host, ray_port = cluster.exports["RAY_ADDRESS"].rsplit(":", 1)
    return [
        ("127.0.0.1", int(cluster.state["PG_PORT"])),
        ("127.0.0.1", int(cluster.state["MLFLOW_PORT"])),
        (ray_host, int(ray_port)),
    ]


def _open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def _our_processes(sessions: list[int], markers: list[str]) -> list[int]:
    """Processes in the servers' sessions, or whose command line names one of ``markers``
    (the state dir: PostgreSQL's data dir is in it; Ray's temp dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            sid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        if sid in sessions or any(m in cmdline for m in markers):
            found.append(int(proc.name))
    return found


def test_down_stops_everything(cluster: Cluster) -> None:
    sessions = [int(cluster.state[k]) for k in ("MLFLOW_PID", "RAY_HEAD_PID", "RAY_WORKER_PID")]
    markers = [cluster.state["RAY_TMP"], str(cluster.dir)]
    assert all(_open(h, p) for h, p in _ports(cluster))
    assert _our_processes(sessions, markers)
    out = _script(["down"], cluster.env)  # no DIR: found through the record under TMPDIR
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout == ""
    assert not cluster.dir.exists()
    assert [(h, p) for h, p in _ports(cluster) if _open(h, p)] == []
    assert _our_processes(sessions, markers) == []
