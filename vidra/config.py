"""`Settings`: the one configuration object (pydantic-settings, env prefix ``VIDRA_``).

Nested sections use ``__`` in environment variables, e.g. ``VIDRA_VIDEO__BACKEND=decord``.
Backends are chosen by short names; this module never imports a backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from vidra.errors import ConfigError

# the selector's tool calls (`vidra.agents.search`)
Tool = Literal["search", "find", "zoom", "inspect"]

__all__ = [
    "AgentSettings",
    "IndexSettings",
    "MLflowSettings",
    "ModelSettings",
    "RunnerSettings",
    "ServingSettings",
    "Settings",
    "StorageSettings",
    "TrainSettings",
    "VideoSettings",
    "default_data_dir",
    "load_settings",
]


def default_data_dir() -> Path:
    """Where vidra keeps its database, caches and runs.

    ``$XDG_DATA_HOME/vidra`` when set, else ``~/.local/share/vidra``; always absolute.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser().absolute() / "vidra"


class VideoSettings(BaseModel):
    """How videos are decoded and cached."""

    backend: Literal["pyav", "decord", "torchcodec"] = Field(
        "pyav", description="decoder short name"
    )
    device: str = Field("cpu", description="'cpu' or 'cuda' (torchcodec NVDEC)")
    max_pixels: int = Field(
        1920 * 1080,
        gt=0,
        description="frames with more pixels are downscaled (aspect kept) to fit under this cap",
    )
    threads: int = Field(
        1,
        ge=0,
        description="FFmpeg threads per decode call (0: auto). 1 is fastest for sparse "
        "decoding on small machines (measured: bench/decode.py); raise it for 4K on many cores",
    )
    workers: int = Field(
        2, ge=1, description="runs of GOPs one decode call may decode in parallel (pyav)"
    )
    decode_timeout_s: float = Field(120.0, gt=0, description="deadline of one decode call")
    cache_bytes: int = Field(512 * 1024 * 1024, ge=0, description="in-memory frame cache budget")
    cache_dir: Path | None = Field(None, description="optional on-disk frame cache directory")
    remote_timeout_s: float = Field(
        20.0, gt=0, description="socket timeout (s) of one HTTP request to a remote video"
    )
    remote_retries: int = Field(
        2,
        ge=0,
        description="extra tries of a remote request that failed to connect, was cut off or "
        "got a 5xx (backoff 0.2 s, doubling)",
    )
    remote_block_bytes: int = Field(
        1 << 20,
        ge=4096,
        description="most bytes one HTTP Range request fetches (read-ahead): a read after a "
        "seek fetches 64 KiB, and reading on doubles the request up to this",
    )
    remote_cache_bytes: int = Field(
        64 << 20, ge=0, description="process-wide LRU of fetched remote blocks, in bytes"
    )
    remote_revalidate_s: float = Field(
        30.0,
        ge=0,
        description="seconds a remote file's identity (size, ETag) is trusted before it is "
        "asked for again (0: every call); every fetched block is checked against it anyway",
    )


class ModelSettings(BaseModel):
    """Which vision-language model serves the agents."""

    backend: Literal["hf", "vllm", "scripted"] = Field("hf", description="model backend")
    path: str = Field(
        "vidra-tiny",
        description="hub id or local directory of a Qwen2.5-VL-family checkpoint, or 'vidra-tiny'",
    )
    device: str = Field("cpu", description="'cpu' or 'cuda' (hf); vllm always uses the GPU")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_frames: int = Field(64, gt=0, description="most frames one model call may carry")
    max_pixels: int | None = Field(None, gt=0, description="per-frame pixel cap for the processor")
    trust_remote_code: bool = Field(False, description="allow a checkpoint's own code")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="role -> LoRA adapter directory loaded at start"
    )


class AgentSettings(BaseModel):
    """How the four agents work an episode, and its default budget."""

    strategy: Literal["uniform", "shots", "coarse_to_fine", "model", "search", "retrieve"] = Field(
        "coarse_to_fine", description="frame selector strategy"
    )
    max_rounds: int = Field(3, gt=0, description="reason/critique rounds per episode")
    max_frames: int = Field(32, gt=0, description="frames one episode may look at")
    frames_per_round: int = Field(8, gt=0, description="new frames per selection round")
    deadline_s: float = Field(600.0, gt=0, description="wall-clock budget of one episode")
    frame_size: int = Field(160, gt=0, description="longer side (px) of frames shown to the model")
    storyboard_size: int = Field(16, gt=0, description="thumbnails the model selector reads")
    plan_budget: bool = Field(
        True, description="the planner's frame_budget may lower the episode's frame budget"
    )
    reasoner_samples: int = Field(1, ge=1, description=">1: self-consistency voting")
    answer_mode: Literal["options", "free"] = Field(
        "options",
        description="options: a multiple-choice answer is one of the options, picked by the "
        "model's likelihood (hf; vllm: guided decoding); free: generated as is",
    )
    reflect: bool = Field(False, description="ReAgent-V-style reflection on revision rounds")
    critic_threshold: float = Field(0.5, ge=0, le=1, description="critic score to accept")
    max_tokens: int = Field(128, gt=0, description="completion tokens per agent call")
    max_tool_calls: int = Field(
        4, gt=0, description="search strategy: tool calls per selection round"
    )
    tool_mode: Literal["calls", "free"] = Field(
        "calls",
        description="calls: the search selector's reply is one of the well-formed tool calls "
        "on the question's phrases, picked by the model's likelihood (hf; vllm: guided "
        "decoding); free: generated as is",
    )
    find_tool: bool = Field(
        False,
        description="search strategy: the selector's constrained replies also hold find, a "
        "search and then an inspect of what it found in one tool call; the prompt does not "
        "name it (naming it changes vidra-tiny's other choices), so a model picks it only "
        "once it has learned to (tool_mode=calls)",
    )
    repeat_searches: bool = Field(
        False,
        description="search strategy: the selector's constrained replies also hold a search "
        "of a query already searched in the round (the index gives the same moments again, "
        "so it only spends a call); false: only queries not yet searched are offered",
    )
    selector_explore_tools: float = Field(
        0.0,
        ge=0,
        le=1,
        description="when G > 1 (rollouts for training): with this probability a search "
        "selector turn chooses among one kind of tool call only (search, find, the bare "
        "inspect, a zoom, an inspect with times), the kind drawn uniformly: a call the model "
        "thinks unlikely (find, before training) gets tried; answers (G = 1) are unaffected",
    )
    rollout_temperature: float = Field(1.0, gt=0, description="sampling temperature when G > 1")
    seed: int | None = Field(
        None,
        description="when G > 1: seeds the rollouts' sampling from this, the video's content, "
        "the question and its options, so runs repeat exactly (the same question on the same "
        "video draws alike in every job); none: from the job id, so each job samples anew",
    )
    selector_choice_temperature: float = Field(
        1.0,
        gt=0,
        le=100,
        description="when G > 1 (rollouts for training): the search selector samples its "
        "choice among well-formed tool calls from their likelihoods at this temperature; > 1 "
        "tries rarely chosen calls (such as the one-call inspect) so that a reward such as "
        "tool_cost has both paths to compare (hf backend); answers (G = 1) are unaffected",
    )


class IndexSettings(BaseModel):
    """How a video's searchable index is built (once per video content and configuration)."""

    stride_s: float | None = Field(
        None, gt=0, description="seconds per clip; default: from the video's length"
    )
    min_stride_s: float = Field(2.0, gt=0, description="shortest clip (auto stride)")
    max_clips: int = Field(2000, gt=0, description="most clips per video (auto stride)")
    frame_size: int = Field(160, gt=0, description="longer side (px) of captioned frames")
    batch: int = Field(32, gt=0, description="clips captioned per model call")
    caption_tokens: int = Field(32, gt=0, description="tokens per caption")
    search_k: int = Field(
        2000,
        gt=0,
        description="clips one search considers at most (its moments are counted from these)",
    )
    embedder: str | None = Field(
        None,
        description="optional aligned image-text encoder (a CLIP or SigLIP checkpoint: local "
        "directory or hub id): each clip's frame is embedded too, and a search also returns "
        "the clips that look most like each of its phrases",
    )
    embed_k: int = Field(8, gt=0, description="clips a search adds per phrase by embedding")


class ServingSettings(BaseModel):
    """How model calls of concurrent episodes are served."""

    max_batch: int = Field(
        16, gt=0, description="most requests batched into one model call (1: no batching)"
    )
    max_wait_s: float = Field(
        0.005, ge=0, description="how long a request waits for others to share its batch"
    )
    replicas: int = Field(1, gt=0, description="ray: model-server actors (round-robin)")


class RunnerSettings(BaseModel):
    """Where episodes run."""

    executor: Literal["local", "ray"] = Field("local", description="thread pool or Ray actors")
    workers: int = Field(
        2, gt=0, description="concurrent jobs (local) / episode-worker actors (ray)"
    )
    jobs_per_worker: int = Field(2, gt=0, description="ray: jobs one episode worker runs at once")
    worker_cpus: float = Field(0.5, ge=0, description="ray: CPUs reserved per episode worker")
    episode_resources: dict[str, float] = Field(
        default_factory=dict,
        description='ray: custom resources an episode worker needs, e.g. {"worker_node": 1} '
        "to place episodes on the nodes that carry that resource",
    )
    model_resources: dict[str, float] = Field(
        default_factory=dict, description="ray: custom resources of the model-server actor"
    )
    ray_address: str | None = Field(None, description="Ray cluster address; None: local Ray")
    lease_s: float = Field(
        30.0,
        gt=0,
        description="a running job's lease: renewed by its process; after this long without "
        "a heartbeat, `vidra resume` may take the job over",
    )


class MLflowSettings(BaseModel):
    """Experiment tracking and the model registry."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: SQLite store under data_dir (absolute)"
    )
    experiment: str = Field("vidra", description="MLflow experiment name")
    use_champions: bool = Field(
        True, description="new jobs load each role's 'champion' adapter when no adapter is set"
    )
    timeout_s: float = Field(
        10.0, gt=0, description="connect/read timeout of one MLflow HTTP request"
    )
    retries: int = Field(
        2, ge=0, description="retries of a failed MLflow HTTP request (bounded backoff)"
    )


class TrainSettings(BaseModel):
    """Defaults of a retraining cycle."""

    num_workers: int = Field(
        1, gt=0, description="Ray Train workers (DDP; NCCL with model.device=cuda, else gloo)"
    )
    placement: Literal["PACK", "SPREAD"] = Field(
        "PACK", description="Ray Train workers packed on few nodes, or spread over the nodes"
    )
    worker_resources: dict[str, float] = Field(
        default_factory=dict,
        description='custom Ray resources each training worker needs, e.g. {"trainer": 1}',
    )
    lr: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, gt=0)
    epochs: int = Field(1, gt=0)
    normalise_std: bool = Field(
        True,
        description="GRPO: divide a group's centred rewards by their std; false: centred only "
        "(Dr. GRPO), so a group whose rollouts differ only in small components (frame cost, "
        "format) gets small advantages, not ones as large as a right-or-wrong group's",
    )
    seed: int = Field(
        0,
        ge=0,
        description="seeds a training's sample order and adapter initialisation; train again "
        "with another seed to measure the run-to-run noise of a recipe",
    )
    loss_tokens: Literal["all", "decision"] = Field(
        "all",
        description="GRPO, SFT: the reply tokens an advantage (SFT: the likelihood) is applied "
        "to: all, or decision (the tokens up to a reply's decision: the reasoner's answer, the "
        "critic's accept, the selector's tool; the confidence, cited times and search query "
        "that follow are then not pushed by the episode's outcome)",
    )
    lora_targets: Literal["text", "text+vision"] = Field(
        "text",
        description="what a new adapter adapts: text (the language model's projections; the "
        "vision tower stays the base model's) or text+vision (also the vision tower's and its "
        "merger's: training can change what a role sees in a frame; such adapters run alone "
        "in a batch, and vLLM serves them with its tower LoRA on)",
    )
    resample: int = Field(
        0,
        ge=0,
        description="GRPO: the reasoner and the critic learn from this many fresh replies to "
        "each of their recorded prompts, each rewarded by its own decision (the answer against "
        "the truth; accept or revise against whether the judged answer was right: per-step "
        "groups, choices compared on equal inputs), instead of from their episodes' "
        "advantages; 0: off, else >= 2",
    )
    reward_weights: dict[str, float] = Field(
        default_factory=dict,
        description="weights of reward components over the defaults (episode: accuracy 1, "
        "format 0.2, frame_cost 0.1, temporal_iou 0.5; step: evidence_credit 0.5), e.g. "
        '{"tool_cost": 0.05} to make every tool call cost, or {"tool_cost_to_go": 0.05} to '
        "charge each call for the calls from it on; 0 leaves a component out",
    )
    sft_min_reward: float = Field(
        1.0,
        description="SFT: keep episodes whose weighted reward reaches this (rejection sampling)",
    )
    sft_best_of_group: bool = Field(
        False,
        description="SFT: of a question's rollouts keep only those with the group's highest "
        "reward (ties all kept; best-of-n): with a tool cost weighed in (reward_weights), each "
        "question's cheapest right path",
    )
    sft_fuse_find: bool = Field(
        False,
        description="SFT: learn each episode whose selector searched and then inspected at once "
        "as it would have gone with one find of that query (same outcome, one call fewer); needs "
        "agents.find_tool. This teaches the call from what the record shows it does, not from "
        "outcomes the model sampled",
    )
    sft_tools: list[Tool] = Field(
        default_factory=list,
        description="SFT: learn only the selector's calls of these tools (a fused find is a "
        'find), e.g. ["find"] to teach a tool its rollouts seldom chose without the calls they '
        "mostly made outweighing it; the selector's other replies are left out; empty: all",
    )
    checkpoint_every: int = Field(10, gt=0)
    gate_tolerance: float = Field(
        0.02,
        ge=0,
        description="a tie (the paired interval holds 0) may be promoted (promote_ties) when "
        "its lower bound is at least minus this",
    )
    gate_task: str = Field(
        "synthetic", description="the evaluation task the gate runs (see `vidra eval tasks`)"
    )
    gate_options: dict[str, str] = Field(
        default_factory=lambda: {"worlds": "8", "duration": "180", "per_kind": "3", "seed": "7000"},
        description="the gate task's options (default: 8 held-out synthetic worlds)",
    )
    gate_annotations: Path | None = Field(None, description="annotations of a benchmark gate")
    gate_videos: Path | None = Field(
        None, description="videos of the gate task (default: <data_dir>/gate)"
    )
    eval_questions: int = Field(
        100, gt=0, description="questions the gate asks the candidate and the champion"
    )
    min_samples: int = Field(
        16, ge=0, description="a version trained on fewer samples is registered, not promoted"
    )
    promote_ties: bool = Field(
        False, description="promote when the gate cannot tell the versions apart (a tie)"
    )
    promote: Literal["gate", "never"] = Field(
        "gate",
        description="gate: move the champions when the gate passes; never: register the "
        "new versions only (promote later by hand)",
    )


class StorageSettings(BaseModel):
    """How the trajectory store behaves (the URL itself is ``Settings.database_url``)."""

    auto_migrate: bool = Field(
        True, description="create/upgrade the schema on first use (else: `vidra db upgrade`)"
    )
    max_text_chars: int = Field(
        200_000, gt=0, description="prompt/completion texts longer than this are truncated"
    )
    pool_size: int = Field(5, gt=0, description="connection pool size (PostgreSQL)")
    reconnect_s: float = Field(
        10.0,
        ge=0,
        description="how long a write (and `Job.result`) keeps retrying a lost database "
        "connection before giving up with DatabaseUnavailable",
    )


class Settings(BaseSettings):
    """All of vidra's configuration; every field can be set as ``VIDRA_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="VIDRA_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default_factory=default_data_dir, description="vidra's home")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the trajectory store; default: SQLite file in data_dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    video: VideoSettings = Field(default_factory=VideoSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    agents: AgentSettings = Field(default_factory=AgentSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)

    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI: ``mlflow.tracking_uri`` or an absolute SQLite store."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').absolute()}"

    def resolved_database_url(self) -> str:
        """The store's URL: ``database_url`` or ``sqlite:///<data_dir>/vidra.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vidra.db').absolute()}"


def _env_name(loc: tuple[object, ...]) -> str:
    return "VIDRA_" + "__".join(str(x).upper() for x in loc)


def _field_line(err: dict[str, object]) -> str:
    raw = err.get("loc", ())
    loc = tuple(raw) if isinstance(raw, tuple | list) else (raw,)
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
    return f"{_env_name(loc)}: {err.get('msg')}{shown}"


def _json_line(exc: SettingsError) -> str:
    """Name the variable whose value is not the JSON its field needs."""
    import json

    text = str(exc)
    field = text.split('"')[1] if text.count('"') >= 2 else ""
    prefix = f"VIDRA_{field.upper()}"
    for name, value in sorted(os.environ.items()):
        if name == prefix or name.startswith(prefix + "__"):
            try:
                json.loads(value)
            except ValueError:
                if value.lstrip()[:1] in "{[" or name.endswith(("ADAPTERS", "RESOURCES")):
                    return (
                        f"{name}: not valid JSON (got {value!r}); write an object such as "
                        '{"reasoner": "/adapters/r1"}'
                    )
    return f"{prefix}: {text}"


def load_settings(**values: object) -> Settings:
    """`Settings` from the environment (and ``values``), with one line per bad field.

    Raises:
        ConfigError: each line names the variable (``VIDRA_AGENTS__MAX_FRAMES: ...``).
    """
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_field_line(dict(e)) for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc
    except SettingsError as exc:
        raise ConfigError(_json_line(exc)) from exc
