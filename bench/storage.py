"""Storage benchmark: recording throughput, streaming 1M steps through the GRPO-group query,
and bytes per 1,000 steps, on SQLite and on a real PostgreSQL. Prints JSON.

PostgreSQL: ``VIDRA_TEST_POSTGRES_URL`` if set, else a throwaway server started here.
Episodes look like the runner's: 8 steps (2 per role), 48 completion tokens each, ~600-char
prompts, 3 reward components, recorded in batches of ``--batch`` episodes per transaction.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLES = ("planner", "selector", "reasoner", "critic")
STEPS, TOKENS, G = 8, 48, 4


def episodes(job_ids: list[str], start: int, count: int) -> list[dict]:
    rng = random.Random(start)
    out = []
    for k in range(start, start + count):
        steps = []
        for s in range(STEPS):
            ids = [rng.randrange(150_000) for _ in range(TOKENS)]
            steps.append(
                {
                    "order": s,
                    "role": ROLES[s % 4],
                    "adapter_version": f"{ROLES[s % 4]}@v1",
                    "prompt": "You are the reasoner. Frames at 12.5s, 40.0s ... " * 12,
                    "frames": [("v0", rng.randrange(100_000)) for _ in range(4)],
                    "completion": '{"answer": "B", "confidence": 0.8}',
                    "token_ids": ids,
                    "logprobs": [-rng.random() for _ in ids],
                    "parsed": {"answer": "B"},
                    "latency_s": 0.1,
                    "prompt_tokens": 600,
                    "completion_tokens": TOKENS,
                }
            )
        out.append(
            {
                "job_id": job_ids[k // G],
                "rollout_index": k % G,
                "steps": steps,
                "rewards": [
                    {"name": "accuracy", "value": float(rng.random() > 0.5)},
                    {"name": "format", "value": 1.0},
                    {"name": "frame_cost", "value": -0.1},
                ],
            }
        )
    return out


def populate(url: str, n_steps: int, batch: int) -> dict[str, float]:
    from vidra.storage import JobCreate, TrajectoryStore, VideoIn

    store = TrajectoryStore(url)
    n_eps = n_steps // STEPS
    video = store.register_video(
        VideoIn(
            path="/bench/v0.mp4",
            size=1,
            mtime_ns=1,
            content_hash="bench",
            duration=3600,
            fps=30,
            frame_count=108000,
            width=640,
            height=360,
            codec="h264",
        )
    )
    job_ids: list[str] = []
    while len(job_ids) < -(-n_eps // G):  # one job (question) per group of G rollouts
        job_ids.append(
            store.create_job(
                JobCreate(
                    video_id=video.id, question=f"Q{len(job_ids)}?", options=["A", "B"], rollouts=G
                )
            ).id
        )
    timed_steps = 0
    t_record = 0.0
    for start in range(0, n_eps, batch):
        eps = episodes(job_ids, start, min(batch, n_eps - start))
        t0 = time.perf_counter()
        store.record_episodes(eps)
        t_record += time.perf_counter() - t0
        timed_steps += len(eps) * STEPS
    store.close()
    return {
        "episodes": n_eps,
        "steps": timed_steps,
        "record_seconds": round(t_record, 2),
        "steps_per_s": round(timed_steps / t_record),
        "episodes_per_s": round(n_eps / t_record),
    }


STREAM = """
import resource, sys, time
from vidra.storage import TrajectoryStore
store = TrajectoryStore(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); steps = groups = 0
for g in store.iter_groups(min_rollouts=4, batch_size=int(sys.argv[2])):
    groups += 1
    steps += sum(len(t.steps) for t in g.trajectories)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(steps, groups, time.perf_counter() - t0, base, peak)
"""


def stream(url: str, batch: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STREAM, url, str(batch)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    steps, groups, seconds, base_kb, peak_kb = out.stdout.split()
    return {
        "steps": int(steps),
        "groups": int(groups),
        "seconds": round(float(seconds), 1),
        "peak_rss_mb": round(int(peak_kb) / 1024),
        "rss_growth_mb": round((int(peak_kb) - int(base_kb)) / 1024),
    }


def size_bytes(url: str) -> int:
    from sqlalchemy import text

    from vidra.storage.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return int(
                conn.exec_driver_sql("PRAGMA page_count").scalar()
                * conn.exec_driver_sql("PRAGMA page_size").scalar()
            )
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())


def run(name: str, url: str, n_steps: int, batch: int) -> dict[str, object]:
    rec = populate(url, n_steps, batch)
    res: dict[str, object] = {"record": rec}
    res["stream_grpo_groups"] = stream(url, 200)
    res["bytes_per_1000_steps"] = round(size_bytes(url) / n_steps * 1000)
    print(f"{name}: {json.dumps(res)}", file=sys.stderr)
    return res


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=16, help="episodes per transaction")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    import sqlalchemy

    from tests.pg import fresh_database, postgres_server

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run("sqlite", f"sqlite:///{tmp}/bench.db", args.steps, args.batch)
    if not args.no_postgres:
        with postgres_server() as server, fresh_database(server) as url:
            results["postgresql"] = run("postgresql", url, args.steps, args.batch)
    sq = results["sqlite"]
    assert isinstance(sq, dict)
    targets = {
        "sqlite >= 5,000 steps/s recorded": {
            "value": sq["record"]["steps_per_s"],
            "met": sq["record"]["steps_per_s"] >= 5000,
        },
        "1M steps streamed < 60 s": {
            "value": sq["stream_grpo_groups"]["seconds"],
            "met": sq["stream_grpo_groups"]["seconds"] < 60,
        },
        "streaming peak RSS < 500 MB": {
            "value": sq["stream_grpo_groups"]["peak_rss_mb"],
            "met": sq["stream_grpo_groups"]["peak_rss_mb"] < 500,
        },
    }
    report = {
        **header(
            "storage",
            sqlalchemy=sqlalchemy.__version__,
            sqlite=__import__("sqlite3").sqlite_version,
        ),
        "steps": args.steps,
        "steps_per_episode": STEPS,
        "tokens_per_step": TOKENS,
        "group_size": G,
        "episodes_per_transaction": args.batch,
        "results": results,
        "targets": targets,
    }
    emit(report, args.out)
    return 0 if all(t["met"] for t in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
