"""An evaluation in MLflow: a run with the metrics and the config, the per-question table as an
artifact, and one trace per episode (a span per agent step: role, adapter version, tokens,
latency) so answers can be inspected in the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.storage import Trajectory, TrajectoryStore

__all__ = ["EvalTracking", "log_trace"]

log = logging.getLogger(__name__)

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


class EvalTracking:
    """An evaluation's MLflow run, opened when the evaluation starts: each answered
    question's trace is logged in the background while the next questions run (`add`), and
    the metrics, config and per-question table when it ends (`finish`)."""

    def __init__(
        self, settings: Settings, task: str, store: TrajectoryStore, traces: bool = True
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from vidra.rl.tracking import open_mlflow

        self.mlflow = open_mlflow(settings, f"{settings.mlflow.experiment}-eval")
        self.client = self.mlflow.tracking.MlflowClient()
        exp = self.mlflow.get_experiment_by_name(f"{settings.mlflow.experiment}-eval")
        self.run_id = str(self.client.create_run(exp.experiment_id, run_name=f"eval-{task}")
                          .info.run_id)  # fmt: skip
        self.task, self.store, self.traces = task, store, traces
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidra-eval-mlflow")
        self.pending: list[Any] = []

    def add(self, row: dict[str, Any]) -> None:
        """Trace this answered question (in the background)."""
        if self.traces and row.get("episode_id"):
            self.pending.append(self.pool.submit(self._trace, row))

    def _trace(self, row: dict[str, Any]) -> None:
        t = self.store.get_episode(row["episode_id"])
        log_trace(self.client, self.run_id, t, f"{self.task}:{row['qid']}")

    def finish(self, report: dict[str, Any]) -> str:
        """Log the report and close the run (traces written first); the run id."""
        from mlflow.entities import Metric, Param

        for f in self.pending:
            f.result()
        self.pool.shutdown(wait=True)
        spec = {k: str(v)[:500] for k, v in report["spec"].items()}
        params = [Param(k, v) for k, v in {**spec, "eval_run": report["run_id"]}.items()]
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in _metrics(report).items()]
        self.client.log_batch(self.run_id, metrics=metrics, params=params)
        folder = Path(tempfile.mkdtemp(prefix="vidra-eval-"))
        (folder / "per_question.json").write_text(json.dumps(report["per_question"], indent=1))
        summary = {k: v for k, v in report.items() if k != "per_question"}
        (folder / "report.json").write_text(json.dumps(summary, indent=1, default=str))
        self.client.log_artifacts(self.run_id, str(folder), artifact_path="evaluation")
        if self.traces:  # traces are exported in the background: written before returning
            self.mlflow.flush_trace_async_logging()
        self.client.set_terminated(self.run_id, "FINISHED")
        return self.run_id

    def fail(self) -> None:
        """Close the run as failed (the evaluation raised)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.client.set_terminated(self.run_id, "FAILED")
        except Exception:
            log.warning("could not mark MLflow run %s failed", self.run_id)
