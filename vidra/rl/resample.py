"""Per-step GRPO groups for the reasoner and the critic: G fresh replies to each of their
recorded prompts, each rewarded by its own decision (the reasoner's answer against the truth;
the critic's accept or revise against whether the answer it judged was right).

An episode's advantage tells the reasoner how the whole episode went, and that mostly
reflects what the selector and the searches showed it, not what it chose: in a collection
of 696 vidra-tiny questions (G=4), 314 of the 364 groups with both right and wrong rollouts
gave the reasoner different prompts. Sampling its reply to one fixed prompt G times compares
its choices on equal inputs (per-step groups, as in VinePPO's Monte-Carlo step values and
Video-CoM's step rewards), and it needs only one recorded episode per question, not a group.

The critic's reward is exact in the same way (Critic-V's outcome signal, per reply): accepting
a right answer or sending a wrong one back scores 1, the other way round 0.

The replies are sampled from the policy the training starts from (its adapter, or the base
model where the role has none), at the rollout temperature, constrained to the options as in
an episode; their sampling logprobs are the GRPO ratio's denominators, as a recorded step's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidra.agents.reasoner import answer_prefixes
from vidra.agents.schemas import parse_answer, parse_critique
from vidra.models.protocol import ChatModel, Completion, SamplingParams
from vidra.rl.datasets import Dataset, RewardSpec, Sample
from vidra.rl.losses import grpo_advantages
from vidra.rl.replay import replay_request
from vidra.rl.rewards import accuracy
from vidra.storage import StepRecord, TrajectoryStore

__all__ = [
    "RESAMPLED_REWARDS",
    "RESAMPLED_ROLES",
    "Prompt",
    "answer_reward",
    "critic_reward",
    "recorded_prompts",
    "replay_requests",
    "resample",
]

RESAMPLED_ROLES = ("reasoner", "critic")
"""The roles whose replies a reward can judge alone: the reasoner's answer against the truth,
the critic's verdict against the answer it judged."""
RESAMPLED_REWARDS = {"reasoner": {"accuracy": 1.0}, "critic": {"critic_verdict": 1.0}}
"""What a resampled reply of each role is rewarded by (`answer_reward`, `critic_reward`): the
reward record of a training run with per-step groups."""


@dataclass(frozen=True)
class Prompt:
    """A recorded step to answer again, with what its replies are judged against."""

    step: StepRecord
    episode_id: str
    question_key: str
    options: list[str] | None
    truth: str
    proposed_right: bool | None = None  # the critic's: was the answer it judges right


def answer_reward(text: str, options: Sequence[str] | None, truth: str) -> float | None:
    """1.0 when a reasoner reply's answer is the truth, 0.0 when it is another; None when the
    reply does not parse (a format failure answers nothing: it scores 0 in a group)."""
    try:
        a = parse_answer(text, options)
    except ValueError:
        return None
    return accuracy(a.answer, truth, options, a.choice)


def critic_reward(text: str, proposed_right: bool, threshold: float = 0.5) -> float | None:
    """1.0 when a critic reply's verdict is the right one (accept, with a score reaching
    ``threshold``, a right answer; send a wrong one back), 0.0 when it is the other; None when
    the reply does not parse."""
    try:
        return float(parse_critique(text).accepts(threshold) == proposed_right)
    except ValueError:
        return None


def recorded_prompts(
    store: TrajectoryStore, role: str = "reasoner", since_run: str | None = None
) -> tuple[list[Prompt], dict[str, int]]:
    """The distinct prompts (text and frames) of ``role``'s recorded steps in training
    episodes (never evaluation runs') whose question has a ground truth; and counts of what
    was left out: ``no_truth`` steps, ``duplicate`` prompts (the G rollouts of one question
    often give the reasoner the same one), steps recorded ``no_layout`` (before replay); a
    critic's step whose round has no parsed answer before it counts ``no_answer``."""
    counts = {"steps": 0, "no_truth": 0, "duplicate": 0, "no_layout": 0, "no_answer": 0}
    truths: dict[str, tuple[list[str] | None, str | None]] = {}
    seen: set[tuple[str, str, tuple[tuple[str, int], ...]]] = set()
    out: list[Prompt] = []
    for t in store.iter_trajectories(since_run=since_run, evaluations=False):
        job_id = t.episode.job_id
        if job_id not in truths:
            job = store.get_job(job_id)
            truths[job_id] = (job.options, job.answer)
        options, truth = truths[job_id]
        answer: dict[str, Any] | None = None  # the latest reasoner step's parsed answer
        for s in sorted(t.steps, key=lambda x: x.order):
            if s.role == "reasoner":
                answer = s.parsed if s.parse_ok and isinstance(s.parsed, dict) else None
            if s.role != role or not s.token_ids:
                continue
            counts["steps"] += 1
            if truth is None:
                counts["no_truth"] += 1
                continue
            if not s.messages:
                counts["no_layout"] += 1
                continue
            key = (t.episode.question_key, s.prompt, tuple(s.frames))
            if key in seen:
                counts["duplicate"] += 1
                continue
            right = None
            if role == "critic":
                if answer is None:
                    counts["no_answer"] += 1
                    continue
                right = accuracy(answer.get("answer"), truth, options, answer.get("choice")) == 1
            seen.add(key)
            out.append(Prompt(s, t.episode.id, t.episode.question_key, options, truth, right))
    return out, counts


def replay_requests(
    prompts: Sequence[Prompt], frames: Sequence[Any], adapter: str | None,
    sampling: SamplingParams, constrain: bool = True,
) -> list[Any]:  # fmt: skip
    """The recorded prompts asked again with their decoded ``frames``, by ``adapter`` (None:
    the base model); ``constrain``: a multiple-choice reply begins with one of the options,
    as the reasoner's in an episode."""
    return [
        replay_request(p.step.messages, f, adapter, sampling.model_copy(update={
            "prefixes": answer_prefixes(p.options) if constrain and p.options else []}))
        for p, f in zip(prompts, frames, strict=True)
    ]  # fmt: skip


def resample(
    model: ChatModel,
    prompts: Sequence[Prompt],
    frames_of: Callable[[Sequence[Sequence[tuple[str, int]]]], list[Any]],
    sampling: SamplingParams,
    group: int,
    adapter: str | None,
    normalise_std: bool = False,
    constrain: bool = True,
    batch: int = 8,
    role: str = "reasoner",
    threshold: float = 0.5,
) -> Dataset:
    """GRPO samples from ``group`` fresh replies to each prompt: each reply's reward is
    `answer_reward` (the critic's: `critic_reward` at ``threshold``), its advantage that
    minus the mean of its prompt's replies (divided by their std with ``normalise_std``).
    Prompts whose replies all score alike teach nothing and are counted ``zero_variance``.
    ``frames_of`` decodes the frames of many steps at once
    (`vidra.rl.replay.batch_step_frames`); ``constrain``: a multiple-choice reasoner reply
    begins with one of the options, as in an episode (the critic's replies are free)."""
    if group < 2:
        raise ValueError(f"resample group={group}: comparing replies needs >= 2")
    spec = RewardSpec(weights=RESAMPLED_REWARDS[role], step_weights={})
    ds = Dataset("grpo", spec, filters={"roles": [role], "resample": group,
                                           "normalise_std": normalise_std},
                 resampled={role: RESAMPLED_REWARDS[role]})  # fmt: skip
    ds.counts = {"prompts": 0, "zero_variance": 0, "replies": 0, "unparsed": 0}
    for at in range(0, len(prompts), batch):
        chunk = prompts[at : at + batch]
        frames = frames_of([p.step.frames for p in chunk])
        sampled = sampling.model_copy(update={"n": group})
        reqs = replay_requests(chunk, frames, adapter, sampled, constrain and role == "reasoner")
        replies: list[list[Completion]] = [[] for _ in chunk]
        for c in model.generate(reqs):
            replies[c.request_index].append(c)
        for p, comps in zip(chunk, replies, strict=True):
            ds.counts["prompts"] += 1
            _add(ds, p, comps, normalise_std, role, threshold)
    return ds


def _judge(text: str, p: Prompt, role: str, threshold: float) -> float | None:
    if role == "critic":
        return critic_reward(text, bool(p.proposed_right), threshold)
    return answer_reward(text, p.options, p.truth)


def _add(
    ds: Dataset, p: Prompt, comps: Sequence[Completion], normalise_std: bool, role: str,
    threshold: float,
) -> None:  # fmt: skip
    judged = [_judge(c.text, p, role, threshold) for c in comps]
    rewards = [r or 0.0 for r in judged]
    ds.counts["replies"] += len(comps)
    ds.counts["unparsed"] += judged.count(None)
    if max(rewards) - min(rewards) < 1e-9:
        ds.counts["zero_variance"] += 1
        return
    adv = grpo_advantages(rewards, [0] * len(rewards), normalise_std).tolist()
    ds.episode_ids.append(p.episode_id)
    ds.samples += [
        Sample(role, p.episode_id, p.step.id, p.question_key, p.step.prompt, list(p.step.frames),
               c.token_ids, c.logprobs, c.adapter_version, r, a, messages=p.step.messages)
        for c, r, a in zip(comps, rewards, adv, strict=True)
    ]  # fmt: skip
