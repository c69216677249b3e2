"""An evaluation in MLflow: a run with the metrics and the config, the per-question table as an
artifact, and one trace per episode (a span per agent step: role, adapter version, tokens,
latency) so answers can be inspected in the MLflow UI.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.storage import Trajectory, TrajectoryStore

__all__ = ["log_evaluation", "log_trace"]

_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in report.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    lo, hi = report.get("ci95") or [math.nan, math.nan]
    out.update({"ci95_low": lo, "ci95_high": hi})
    for name, v in report.get("by_category", {}).items():
        out[f"by_category/{_NAME.sub('_', name)}"] = float(v["accuracy"])
    for name, v in (report.get("grounding") or {}).items():
        out[f"grounding/{name.replace('@', '_at_')}"] = float(v)
    return {k: v for k, v in out.items() if not math.isnan(v)}


def log_trace(client: Any, run_id: str, t: Trajectory, name: str) -> str:
    """One trace for episode ``t``: a root span for the episode, a child span per step, with
    times rebuilt from the recorded latencies (steps run one after another)."""
    ep = t.episode
    end_ns = int(ep.created_at.timestamp() * 1e9)
    start_ns = end_ns - int(ep.latency_s * 1e9)
    root = client.start_trace(
        name, span_type="AGENT", inputs={"episode_id": ep.id, "job_id": ep.job_id},
        attributes={"rollout": str(ep.rollout_index), "worker": ep.worker or ""},
        run_id=run_id, start_time_ns=start_ns,
    )  # fmt: skip
    at = start_ns
    for s in t.steps:
        span = client.start_span(
            f"{s.order}:{s.role}", trace_id=root.trace_id, parent_id=root.span_id,
            span_type="LLM", inputs={"prompt": s.prompt[-2000:]},
            attributes={"role": s.role, "adapter_version": s.adapter_version or "base",
                        "prompt_tokens": s.prompt_tokens,
                        "completion_tokens": s.completion_tokens, "latency_s": s.latency_s,
                        "frames": len(s.frames), "parse_ok": s.parse_ok},
            start_time_ns=at,
        )  # fmt: skip
        at += int(s.latency_s * 1e9)
        client.end_span(root.trace_id, span.span_id, outputs={"completion": s.completion[:2000]},
                        end_time_ns=max(at, span.start_time_ns + 1))  # fmt: skip
    client.end_trace(root.trace_id, outputs={"answer": ep.answer}, end_time_ns=max(at, end_ns))
    return str(root.trace_id)


def log_evaluation(
    settings: Settings, report: dict[str, Any], store: TrajectoryStore, traces: bool = True
) -> str:
    """Log ``report`` as an MLflow run in experiment ``<experiment>-eval``; its id."""
    from vidra.rl.tracking import open_mlflow

    mlflow = open_mlflow(settings, f"{settings.mlflow.experiment}-eval")
    client = mlflow.tracking.MlflowClient()
    with mlflow.start_run(run_name=f"eval-{report['task']}") as run:
        spec = {k: str(v)[:500] for k, v in report["spec"].items()}
        mlflow.log_params({**spec, "eval_run": report["run_id"]})
        mlflow.log_metrics(_metrics(report))
        folder = Path(tempfile.mkdtemp(prefix="vidra-eval-"))
        (folder / "per_question.json").write_text(json.dumps(report["per_question"], indent=1))
        summary = {k: v for k, v in report.items() if k != "per_question"}
        (folder / "report.json").write_text(json.dumps(summary, indent=1, default=str))
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")
        if traces:
            for row in report["per_question"]:
                t = store.get_episode(row["episode_id"])
                log_trace(client, run.info.run_id, t, f"{report['task']}:{row['qid']}")
            # traces are exported in the background: written before the report is returned
            mlflow.flush_trace_async_logging()
        return str(run.info.run_id)
