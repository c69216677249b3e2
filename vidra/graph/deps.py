"""What graph nodes receive through LangGraph's runtime context (never through globals)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidra.agents.search import ToolSettings, VideoIndex
from vidra.errors import JobCancelled
from vidra.models.protocol import ChatModel, SamplingParams
from vidra.video.decoders import FrameSource

__all__ = ["Deps", "JobCancelled", "RewardFn", "SubtitleFn"]

SubtitleFn = Callable[[str | None, Sequence[float], str], str]
"""``(subtitle file, times looked at, question) -> rendered lines`` ("" when none)."""
RewardFn = Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]
"""``(episode state, final answer record) -> [{"name", "value"}, ...]``: the episode's reward
components. Built by the runtime from the reward registry; the graph never names a reward."""


@dataclass
class Deps:
    """Run-scoped dependencies of an episode graph.

    Attributes:
        model: the chat model serving all four roles (one adapter per role).
        reader: a (cached) frame reader.
        rewards: computes the episode's reward components when it finalizes.
        strategy: frame selector strategy name.
        sampling: sampling parameters for every agent call.
        selector_sampling: the selector's (default: ``sampling``); rollouts may sample its
            choice among tool calls flatter (``agents.selector_choice_temperature``).
        reasoner_samples: >1 turns on self-consistency voting.
        answer_options: multiple-choice answers are constrained to the options.
        reflect: ReAgent-V-style reflection when the critic asks for a revision.
        critic_threshold: the critic's score needed to accept.
        frame_size: longer side (px) of frames given to the model.
        plan_budget: the planner's ``frame_budget`` may lower the episode's frame budget
            (off for fixed baselines such as uniform-N).
        index: the video index (``search``/``retrieve`` strategies), or None.
        tools: how the selector's tool loop runs (calls per round, whether replies are
            constrained to well-formed calls, ``find`` offered, searches repeated, how often
            a rollout's turn chooses among one kind of call, clips a search considers).
        subtitles: subtitle lines for a prompt (near the given times, else matching the
            question's words), from the composition root's cached loader.
        worker: where the episode runs (``host:pid``, or ``ray:<node>:<pid>``), recorded.
        cancel: set to stop the episode at the next node.
    """

    model: ChatModel
    reader: FrameSource
    rewards: RewardFn
    strategy: str = "coarse_to_fine"
    sampling: SamplingParams = field(default_factory=SamplingParams)
    selector_sampling: SamplingParams | None = None
    reasoner_samples: int = 1
    answer_options: bool = True
    reflect: bool = False
    critic_threshold: float = 0.5
    frame_size: int = 160
    storyboard_size: int = 16
    plan_budget: bool = True
    index: VideoIndex | None = None
    tools: ToolSettings = field(default_factory=ToolSettings)
    subtitles: SubtitleFn = lambda path, times, question: ""
    worker: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("the job was cancelled")
