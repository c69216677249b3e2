"""The composition root: `Settings` become the components a job, an evaluation or a training
worker needs, the same way everywhere (`Client`, Ray episode workers, Ray Train workers,
evaluation, the retraining cycle, train-tiny, the demo).

`Runtime` holds a store, a frame reader (with its cache), a lazily loaded model (configured
adapters, else each role's champion), a lazily opened checkpointer and compiled graph, and
the executor; it is the `JobContext` executors run jobs with. `build_model` is the one way a
model is built from settings, for sampling and (with ``backend="hf"``) for training, so a
trained step is replayed with exactly the visual tokens it was sampled with. Imports nothing
above it (no `api`, no `pipelines`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidra.agents.roles import ROLES
from vidra.agents.search import ToolSettings
from vidra.agents.selector import INDEXED
from vidra.config import Settings
from vidra.errors import ConfigError, VidraError
from vidra.graph.deps import Deps
from vidra.graph.episode import rollout_seed
from vidra.graph.executor import Executor
from vidra.indexing import StoreIndex, index_key
from vidra.models.embedder import ImageTextEmbedder
from vidra.models.protocol import ChatModel, SamplingParams
from vidra.ray_session import check_cluster
from vidra.rl.rewards import Outcome, episode_rewards, is_tool_call
from vidra.storage import JobRecord, TrajectoryStore
from vidra.video import open_reader
from vidra.video.decoders import FrameSource

__all__ = [
    "Runtime",
    "build_model",
    "check_settings",
    "episode_outcome",
    "model_from_settings_json",
    "reward_records",
    "serve",
    "training_model",
    "worker_context",
]

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


def build_model(
    settings: Settings, adapters: dict[str, str] | None = None, backend: str | None = None
) -> ChatModel:
    """The model ``settings.model`` describes (device, dtype, frame and pixel caps), with
    ``adapters`` (role -> directory; default: the configured ones)."""
    from vidra.models import load_chat_model

    overrides: dict[str, Any] = {"adapters": dict(settings.model.adapters if adapters is None
                                                  else adapters)}  # fmt: skip
    if backend is not None:
        overrides["backend"] = backend
    return load_chat_model(settings, **overrides)


def serve(settings: Settings, model: ChatModel) -> ChatModel:
    """``model`` behind dynamic batching of concurrent calls (``serving.max_batch`` > 1)."""
    from vidra.models.serving import BatchingChatModel

    sv = settings.serving
    if sv.max_batch <= 1 or isinstance(model, BatchingChatModel):
        return model
    return BatchingChatModel(model, sv.max_batch, sv.max_wait_s)


def training_model(settings_json: str, base: str, adapters: dict[str, str]) -> Any:
    """A Ray Train worker's model: `build_model` on the ``hf`` backend (training needs
    gradients) from the same settings the steps were sampled with, on ``base``."""
    settings = Settings.model_validate_json(settings_json)
    settings.model.path = base
    return build_model(settings, adapters, backend="hf")


def model_from_settings_json(settings_json: str) -> ChatModel:
    """The served model for a settings snapshot (Ray's model-server actor)."""
    settings = Settings.model_validate_json(settings_json)
    with Runtime(settings, executor_ok=False) as rt:
        return serve(settings, build_model(settings, rt.adapters()))


def worker_context(settings_json: str, model: ChatModel, worker: str) -> Runtime:
    """A Ray episode worker's components, built once for the worker's life."""
    return Runtime(Settings.model_validate_json(settings_json), model=model, worker=worker)


def episode_outcome(state: dict[str, Any], final: dict[str, Any]) -> Outcome:
    """What the reward registry needs from a finished episode's graph state."""
    critiques = state.get("critiques") or []
    return Outcome(
        answer=final.get("answer"),
        choice=final.get("choice"),
        options=state.get("options"),
        truth=state.get("truth"),
        parse_ok=[bool(s.get("parse_ok", True)) for s in state.get("steps", [])],
        frames_used=len(state.get("seen", [])),
        frame_budget=int(state["budget"]["max_frames"]),
        critic_score=critiques[-1]["score"] if critiques else None,
        evidence=[(float(a), float(b)) for a, b in state.get("evidence") or []] or None,
        tools=[
            (k, [(float(a), float(b)) for a, b in s["parsed"]["surfaced"]])
            for k, s in enumerate(state.get("steps", []))
            if is_tool_call(s.get("parsed"))
        ]
        or None,
    )


def reward_records(state: dict[str, Any], final: dict[str, Any]) -> list[dict[str, Any]]:
    """The `RewardFn` the graph gets: every registered reward that applies to the episode."""
    return episode_rewards(episode_outcome(state, final))


class Runtime:
    """Components built from ``settings``; closed together.

    Args:
        settings: configuration.
        model: a ready model (default: `build_model` with `adapters`, on first use).
        adapters: role -> adapter directory (default: configured, else each champion).
        store: an open store to use (default: one opened from the settings).
        worker: recorded as each episode's ``worker`` (default ``host:pid``).
        executor_ok: False for runtimes that never run jobs (no executor is created).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        model: ChatModel | None = None,
        adapters: dict[str, str] | None = None,
        store: TrajectoryStore | None = None,
        worker: str | None = None,
        executor_ok: bool = True,
    ) -> None:
        self.settings = settings
        self._store = store or TrajectoryStore(settings=settings)
        self._owns_store = store is None
        self._reader: FrameSource = open_reader(settings)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._model = model
        self._owns_model = model is None  # built here: closed with the runtime
        self._adapters = adapters
        self._lock = threading.RLock()
        self._checkpointer_cm: Any = None
        self._checkpointer: Any = None
        self._graph: Any = None
        self._executor: Executor | None = None
        self._executor_ok = executor_ok
        self._subtitles: dict[str, Any] = {}
        self._embedder: ImageTextEmbedder | None = None
        self.index = StoreIndex(
            self._store, self._reader, lambda: self.model, settings.index, self._index_key,
            self.embedder,
        )  # fmt: skip

    # the JobContext protocol -----------------------------------------------------------------

    @property
    def store(self) -> TrajectoryStore:
        return self._store

    @property
    def reader(self) -> FrameSource:
        return self._reader

    @property
    def checkpointer(self) -> Any:
        with self._lock:
            if self._checkpointer is None:
                from vidra.graph.checkpoint import open_checkpointer

                cm = open_checkpointer(self.settings)
                self._checkpointer = cm.__enter__()
                self._checkpointer_cm = cm
            return self._checkpointer

    @property
    def graph(self) -> Any:
        with self._lock:
            if self._graph is None:
                from vidra.graph.graph import build_graph

                self._graph = build_graph(self.checkpointer)
            return self._graph

    def _index_key(self) -> dict[str, Any]:
        return index_key(
            self.settings.model.path, self.adapters().get("captioner"), self.settings.index
        )

    def prepare(self, job: JobRecord) -> None:
        """Before a job's episodes: build the video's index when its strategy searches it."""
        if job.budget.get("strategy", self.settings.agents.strategy) in INDEXED:
            rec = self.index.ensure(job.video_id)
            if rec.status == "partial":
                log.warning("job %s searches a partial index: %s", job.id, rec.error)

    def deps(self, job: JobRecord, rollout: int) -> Deps:
        """The graph's runtime context for one rollout of ``job``."""
        a = self.settings.agents
        if job.rollouts > 1:
            seed = rollout_seed(self.sampling_key(job), rollout) % 2**31
            sampling = SamplingParams(
                temperature=a.rollout_temperature, max_tokens=a.max_tokens, seed=seed
            )
        else:
            sampling = SamplingParams(temperature=0.0, max_tokens=a.max_tokens)
        strategy = job.budget.get("strategy", a.strategy)
        explore = {"prefix_temperature": a.selector_choice_temperature} if job.rollouts > 1 else {}
        return Deps(
            model=self.model,
            reader=self._reader,
            rewards=reward_records,
            strategy=strategy,
            sampling=sampling,
            selector_sampling=sampling.model_copy(update=explore),
            reasoner_samples=a.reasoner_samples,
            answer_options=a.answer_mode == "options",
            reflect=a.reflect,
            critic_threshold=a.critic_threshold,
            frame_size=a.frame_size,
            storyboard_size=a.storyboard_size,
            plan_budget=a.plan_budget,
            subtitles=self.subtitle_lines,
            index=self.index if strategy in INDEXED else None,
            tools=ToolSettings(
                max_calls=a.max_tool_calls,
                k=self.settings.index.search_k,
                constrain=a.tool_mode == "calls",
                find=a.find_tool,
                explore=a.selector_explore_tools if job.rollouts > 1 else 0.0,
                repeat=a.repeat_searches,
            ),
            worker=self.worker,
        )

    def sampling_key(self, job: JobRecord) -> str:
        """What seeds ``job``'s rollouts (`rollout_seed`): its id, so each job samples anew;
        with ``agents.seed``, that seed, the video's content hash, the question and its
        options, so the same question samples alike in every run and every store."""
        if self.settings.agents.seed is None:
            return job.id
        video = self.store.get_video(job.video_id)
        return json.dumps([self.settings.agents.seed, video.content_hash, job.question,
                           job.options])  # fmt: skip

    def subtitle_lines(self, path: str | None, times: Sequence[float], question: str) -> str:
        """Rendered subtitle lines for a prompt: near ``times`` when given, else the lines
        sharing a word with ``question`` (the planner, which looks at no frame)."""
        if not path:
            return ""
        from vidra.video.subtitles import load_subtitles, render

        with self._lock:
            subs = self._subtitles.get(path)
            if subs is None:
                subs = self._subtitles[path] = load_subtitles(path)
        if times:
            return render(subs.near(times))
        words = {w for w in re.findall(r"[a-z0-9']+", question.lower()) if len(w) > 3}
        hits = [ln for ln in subs.lines if words & set(re.findall(r"[a-z0-9']+", ln.text.lower()))]
        return render(hits[:8])

    def facts(self, job: JobRecord) -> dict[str, Any]:
        """The episode state's video fields for ``job``'s video."""
        v = self.store.get_video(job.video_id)
        return {
            "video_id": v.id,
            "video_path": v.path,
            "duration": v.duration,
            "fps": v.fps,
            "frame_count": v.frame_count,
        }

    # model -----------------------------------------------------------------------------------

    @property
    def model(self) -> ChatModel:
        with self._lock:
            if self._model is None:
                self._model = serve(self.settings, build_model(self.settings, self.adapters()))
            return self._model

    def embedder(self) -> ImageTextEmbedder | None:
        """The index's image-text encoder, loaded on first use; None unless configured."""
        path = self.settings.index.embedder
        if path is None:
            return None
        with self._lock:
            if self._embedder is None:
                device = "cuda" if self.settings.model.device.startswith("cuda") else "cpu"
                self._embedder = ImageTextEmbedder(path, device=device)
            return self._embedder

    def adapters(self) -> dict[str, str]:
        """Given or configured adapters, else each role's champion (when there is one)."""
        if self._adapters is not None:
            return dict(self._adapters)
        s = self.settings
        if s.model.adapters or not s.mlflow.use_champions:
            return dict(s.model.adapters)
        from vidra.rl.tracking import champion_adapters

        try:
            return champion_adapters(s, self.store, list(ROLES))
        except VidraError as exc:  # an unreachable tracking server must not stop answering
            log.warning("no champion adapters: %s", exc)
            return {}

    # executor --------------------------------------------------------------------------------

    @property
    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if not self._executor_ok:
                    raise TypeError("this runtime was built without an executor")
                self._executor = self._make_executor()
            return self._executor

    def _make_executor(self) -> Executor:
        r = self.settings.runner
        if r.executor == "ray":
            from vidra.graph.ray_runner import RayExecutor

            return RayExecutor(self.settings, model_from_settings_json, worker_context, self._model)
        from vidra.graph.executor import LocalExecutor

        return LocalExecutor(self, workers=r.workers, lease_s=r.lease_s)

    def has_executor(self) -> bool:
        return self._executor is not None

    def close(self, wait: bool = True) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=wait)
                self._executor = None
            if self._checkpointer_cm is not None:
                with contextlib.suppress(Exception):
                    self._checkpointer_cm.__exit__(None, None, None)
                self._checkpointer_cm = self._checkpointer = self._graph = None
            if self._owns_model and self._model is not None:
                close = getattr(type(self._model), "close", None)
                if close is not None:  # a batching model's thread holds the weights
                    close(self._model)
                self._model = None
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_settings(settings: Settings, model_path: bool = True) -> None:
    """Checks that need no model load, made when a client starts (before any job row):
    adapters name known roles and existing directories, the model path resolves, the
    devices exist, the tracking URI has a scheme MLflow serves.

    Raises:
        ConfigError: naming the setting (as its ``VIDRA_...`` variable) and the fix.
    """
    _check_data_dir(settings.data_dir)
    m = settings.model
    for role, path in m.adapters.items():
        if role not in ROLES:
            raise ConfigError(
                f"VIDRA_MODEL__ADAPTERS: unknown role {role!r}; use roles from {list(ROLES)}"
            )
        if not (Path(path).expanduser() / "adapter_config.json").is_file():
            raise ConfigError(
                f"VIDRA_MODEL__ADAPTERS: the {role} adapter {path!r} is not an adapter "
                "directory (no adapter_config.json); fix the path"
            )
    if model_path:
        _check_model_path(m.path, m.backend)
    if m.backend == "vllm" and settings.agents.selector_choice_temperature != 1.0:
        raise ConfigError(
            "VIDRA_AGENTS__SELECTOR_CHOICE_TEMPERATURE: vLLM's guided decoding picks a tool "
            "call token by token, with no choice temperature; leave it at 1 or use backend hf"
        )
    for name, device in (("VIDRA_MODEL__DEVICE", m.device), ("VIDRA_VIDEO__DEVICE",
                                                            settings.video.device)):  # fmt: skip
        _check_device(name, device)
    check_cluster(settings)
    uri = settings.resolved_tracking_uri()
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else "file"
    if scheme not in ("sqlite", "file", "http", "https", "postgresql", "mysql", "databricks"):
        raise ConfigError(
            f"VIDRA_MLFLOW__TRACKING_URI: {uri!r} is not a tracking store MLflow serves; use "
            "http(s)://host:port for a server or sqlite:///path/mlflow.db"
        )


def _check_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".vidra-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"VIDRA_DATA_DIR: {path} is not a writable directory ({exc.strerror or exc}); "
            "point it at a folder vidra may write to"
        ) from exc


def _check_model_path(path: str, backend: str) -> None:
    if backend == "scripted" or path == "vidra-tiny":
        return
    p = Path(path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ConfigError(
                f"VIDRA_MODEL__PATH: {path!r} has no config.json; give a checkpoint directory "
                "(config.json + *.safetensors) or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct"
            )
        return
    if not _HUB_ID.fullmatch(path):
        raise ConfigError(
            f"VIDRA_MODEL__PATH: {path!r} does not exist; give a checkpoint directory or a "
            "hub id such as Qwen/Qwen2.5-VL-3B-Instruct (or 'vidra-tiny')"
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(path, "config.json"), str):
            raise ConfigError(
                f"VIDRA_MODEL__PATH: hub id {path!r} is not in the local cache and "
                "HF_HUB_OFFLINE=1; download it first or give a local directory"
            )


def _check_device(name: str, device: str) -> None:
    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise ConfigError(f"{name}: unknown device {device!r}; use 'cpu' or 'cuda'")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{name}={device!r} but CUDA is not available here; use 'cpu'")
