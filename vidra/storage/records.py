"""Plain pydantic records going in and out of the trajectory store (ORM rows stay inside).

Inbound records validate everything a writer can get wrong (NaN rewards, mismatched
token/logprob lengths, duplicate step orders); outbound records are built from trusted
rows without re-validation.

Text rules: ``prompt`` and ``completion`` longer than ``max_text_chars`` (setting, default
200,000) are cut to that length plus the marker ``"…[truncated N chars]"`` and the step is
flagged ``truncated``; token ids and logprobs are never cut (they are what training uses).
NUL characters (which PostgreSQL text cannot hold) are stored as U+FFFD in every text field;
the token ids still say exactly what the model produced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidra.errors import InvalidInput

__all__ = [
    "JOB_STATUSES",
    "EpisodeIn",
    "EpisodeRecord",
    "EvalQuestionRecord",
    "EvalRunRecord",
    "FrameRef",
    "Group",
    "JobCreate",
    "JobRecord",
    "JobStatus",
    "ModelVersionRecord",
    "RewardIn",
    "RewardRecord",
    "StepIn",
    "StepRecord",
    "TrainingRunRecord",
    "Trajectory",
    "VideoIn",
    "VideoRecord",
    "invalid_input",
]

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
MAX_TOKENS = 1_000_000
MAX_OPTIONS = 26  # options are lettered A-Z in prompts and answers
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
FrameRef = tuple[str, Annotated[int, Field(ge=0)]]
"""(video id, frame index): frames are referred to, never stored."""


def invalid_input(exc: ValidationError, what: str) -> InvalidInput:
    """Turn a pydantic error into `InvalidInput` listing every bad field with its location."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or what
        parts.append(f"{loc}: {err['msg']}")
    return InvalidInput(f"invalid {what}: " + "; ".join(parts))


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("\x00", "\ufffd")
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return [x.replace("\x00", "\ufffd") for x in v]
        return v


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class VideoIn(_In):
    """A video's identity and probe facts, as the caller (the API layer) measured them."""

    path: str = Field(min_length=1)
    size: int = Field(ge=0)
    mtime_ns: int = Field(ge=0)
    content_hash: str = Field(min_length=1, max_length=64)
    duration: FiniteFloat = Field(ge=0)
    fps: FiniteFloat = Field(gt=0)
    frame_count: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    codec: str = Field(max_length=64)


class VideoRecord(_Out):
    id: str
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
    created_at: datetime


class JobCreate(_In):
    """What a job asks: a question about a registered video, optionally with choices."""

    video_id: str = Field(min_length=1)
    question: str = Field(min_length=1, max_length=10_000)
    options: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = None
    answer: str | None = Field(None, max_length=10_000, description="ground truth, if known")
    rollouts: int = Field(1, ge=1, le=256)
    budget: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict, description="settings snapshot")
    model: dict[str, Any] = Field(default_factory=dict, description="serving model/adapters")
    subtitles: str | None = Field(None, max_length=4096, description="subtitle file")
    evidence: list[tuple[FiniteFloat, FiniteFloat]] | None = Field(
        None, max_length=64, description="ground-truth spans (s) that show the answer"
    )

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the question is blank; ask something")
        return v

    @field_validator("evidence", mode="before")
    @classmethod
    def _spans_as_list(cls, v: Any) -> Any:
        """Any sequence of pairs (a numpy array too); a single pair is named as the mistake."""
        if hasattr(v, "tolist"):
            v = v.tolist()
        if v is None or isinstance(v, str | bytes | dict):
            return v
        try:
            spans = list(v)
        except TypeError:
            return v  # pydantic names the type
        if len(spans) == 2 and all(isinstance(x, int | float) for x in spans):
            raise ValueError(f"give a list of spans, e.g. [{tuple(spans)}], not one span")
        return spans or None

    @field_validator("evidence")
    @classmethod
    def _spans_in_order(
        cls, v: list[tuple[float, float]] | None
    ) -> list[tuple[float, float]] | None:
        for a, b in v or []:
            if not 0 <= a <= b:
                raise ValueError(
                    f"span ({a:g}, {b:g}) is not in order: give (start, end) seconds with "
                    "0 <= start <= end, e.g. (12.5, 15.0)"
                )
        return v

    @model_validator(mode="after")
    def _options_and_answer(self) -> JobCreate:
        if self.options is not None:
            if len(self.options) < 2:
                raise ValueError("give at least 2 options, or none for a free-form question")
            if len(self.options) > MAX_OPTIONS:
                raise ValueError(
                    f"{len(self.options)} options: at most {MAX_OPTIONS} (lettered A-Z); "
                    "split the question or ask it open-ended"
                )
            if len(set(self.options)) != len(self.options):
                raise ValueError("options must be distinct")
            if self.answer is not None and self.answer not in self.options:
                raise ValueError(f"answer {self.answer!r} is not among the options")
        return self


class JobRecord(_Out):
    id: str
    video_id: str
    question: str
    options: list[str] | None
    answer: str | None
    rollouts: int
    budget: dict[str, Any]
    settings: dict[str, Any]
    model: dict[str, Any]
    question_key: str
    status: JobStatus
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None = None
    heartbeat_at: datetime | None = None
    subtitles: str | None = None
    evidence: list[tuple[float, float]] | None = None


class StepIn(_In):
    """One model call of one agent, as sampled."""

    order: int = Field(ge=0)
    role: Name
    adapter_version: str | None = Field(None, max_length=200)
    prompt: str
    frames: list[FrameRef] = Field(default_factory=list)
    messages: list[dict[str, Any]] | None = Field(
        None, description="the prompt's structure (text and frame slots) to rebuild it exactly"
    )
    completion: str
    token_ids: list[Annotated[int, Field(ge=0, lt=2**31)]] = Field(default_factory=list)
    logprobs: list[FiniteFloat] = Field(default_factory=list)
    parsed: dict[str, Any] | list[Any] | None = None
    parse_ok: bool = True
    latency_s: FiniteFloat = Field(0.0, ge=0)
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _tokens_match(self) -> StepIn:
        if len(self.token_ids) > MAX_TOKENS:
            raise ValueError(f"{len(self.token_ids)} completion tokens exceed {MAX_TOKENS}")
        if self.logprobs and len(self.logprobs) != len(self.token_ids):
            raise ValueError(
                f"logprobs has {len(self.logprobs)} values for {len(self.token_ids)} token ids; "
                "give one logprob per sampled token (or none)"
            )
        if any(lp > 1e-6 for lp in self.logprobs):
            raise ValueError("logprobs must be <= 0 (log-probabilities)")
        return self


class RewardIn(_In):
    """A named reward component of an episode, or of one of its steps."""

    name: Name
    value: FiniteFloat
    source: str = Field("system", max_length=64)
    step_order: int | None = Field(None, ge=0, description="the step it credits, if any")


class EpisodeIn(_In):
    """A finished episode with its steps and rewards, recorded in one transaction."""

    job_id: str = Field(min_length=1)
    rollout_index: int = Field(0, ge=0)
    group_id: str | None = None
    answer: str | None = Field(None, max_length=10_000)
    choice: int | None = Field(None, ge=0)
    confidence: FiniteFloat | None = Field(None, ge=0, le=1)
    frames_used: int = Field(0, ge=0)
    rounds: int = Field(0, ge=0)
    latency_s: FiniteFloat = Field(0.0, ge=0)
    thread_id: str | None = Field(None, max_length=200)
    worker: str | None = Field(None, max_length=200, description="where it ran")
    steps: list[StepIn] = Field(default_factory=list)
    rewards: list[RewardIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> EpisodeIn:
        orders = [s.order for s in self.steps]
        if len(set(orders)) != len(orders):
            raise ValueError("step orders must be unique within an episode")
        known = set(orders)
        for r in self.rewards:
            if r.step_order is not None and r.step_order not in known:
                raise ValueError(f"reward {r.name!r} credits step {r.step_order}, which is absent")
        keys = [(r.name, r.step_order) for r in self.rewards]
        if len(set(keys)) != len(keys):
            raise ValueError("a reward component appears twice for the same episode/step")
        return self


# Outbound trajectory records are frozen dataclasses: training streams millions of them,
# and building one costs ~1 us where a pydantic model costs ~10 us.


@dataclass(frozen=True, slots=True)
class EpisodeRecord:
    id: str
    job_id: str
    group_id: str
    rollout_index: int
    question_key: str
    answer: str | None
    choice: int | None
    confidence: float | None
    frames_used: int
    rounds: int
    latency_s: float
    thread_id: str | None
    n_steps: int
    created_at: datetime
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    id: int
    episode_id: str
    order: int
    role: str
    adapter_version: str | None
    prompt: str
    frames: list[tuple[str, int]]
    completion: str
    token_ids: list[int]
    logprobs: list[float]
    parsed: dict[str, Any] | list[Any] | None
    parse_ok: bool
    truncated: bool
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    messages: list[dict[str, Any]] | None = None
    damaged: bool = False  # a stored text was not valid UTF-8 (read with U+FFFD)


@dataclass(frozen=True, slots=True)
class RewardRecord:
    id: int
    episode_id: str
    step_order: int | None
    name: str
    value: float
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Trajectory:
    """An episode with its steps (ordered) and reward components."""

    episode: EpisodeRecord
    steps: list[StepRecord]
    rewards: list[RewardRecord]

    def reward(self, name: str) -> float | None:
        """The episode-level value of reward component ``name``, if recorded."""
        for r in self.rewards:
            if r.name == name and r.step_order is None:
                return r.value
        return None

    def total_reward(self, weights: dict[str, float]) -> float:
        """Weighted sum of episode-level components (missing ones count 0)."""
        return math.fsum(w * (self.reward(k) or 0.0) for k, w in weights.items())


@dataclass(frozen=True, slots=True)
class Group:
    """All episodes of one question (same video content, question and options)."""

    question_key: str
    trajectories: list[Trajectory]


class ModelVersionRecord(_Out):
    id: str
    role: str
    registry_name: str
    version: str
    mlflow_run_id: str | None
    alias: str | None
    metrics: dict[str, Any]
    created_at: datetime
    tracking_uri: str = ""
    source: str | None = None


class TrainingRunRecord(_Out):
    id: str
    algorithm: str
    config: dict[str, Any]
    mlflow_run_id: str | None
    status: str
    metrics: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    n_episodes: int
    promotion: dict[str, Any] | None = None


class EvalRunRecord(_Out):
    id: str
    task: str
    key: str
    config: dict[str, Any]
    status: str
    mlflow_run_id: str | None
    metrics: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


class EvalQuestionRecord(_Out):
    eval_run_id: str
    qid: str
    job_id: str | None
    status: str
    result: dict[str, Any]
