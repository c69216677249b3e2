"""Training datasets built from the trajectory store, per agent role.

GRPO: groups of >= 2 rollouts of one question; each step of the requested roles becomes a
sample carrying its sampling-time logprobs and its episode's group-normalised advantage;
zero-variance groups are dropped and counted. DPO: per question, the best and the worst
episode when their rewards differ by at least a margin; a role's steps pair up when their
prompts (text and frames) are identical. SFT: every step of episodes whose total reward
reaches a threshold (rejection sampling). The reward spec is recorded with each dataset.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from vidra.errors import InvalidInput
from vidra.rl.losses import grpo_advantages
from vidra.rl.rewards import DEFAULT_STEP_WEIGHTS, DEFAULT_WEIGHTS, is_tool_call
from vidra.storage import StepRecord, Trajectory, TrajectoryStore

__all__ = [
    "Dataset",
    "RewardSpec",
    "Sample",
    "build_dpo",
    "build_grpo",
    "build_sft",
    "decision",
    "decision_tokens",
    "fused_find",
]


@dataclass(frozen=True)
class RewardSpec:
    """Weights of the named reward components; the scalar reward is their weighted sum.

    ``step_weights`` weigh step-level components (per-turn credit): a step's GRPO advantage
    is its episode's plus, for each, ``weight * (credit - the group's mean credit)``, the
    mean over the steps at the same turn (`_step_credit`).
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    step_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STEP_WEIGHTS))

    def total(self, t: Trajectory) -> float:
        return t.total_reward(self.weights)


def _step_credit(group: Sequence[Trajectory], spec: RewardSpec) -> list[dict[int, float]]:
    """Per episode, ``step order -> the sum over its step-level components of weight * (credit
    minus the group's mean credit of that component at that position)``. A step may carry
    several components; the k-th step of an episode that carries a component is compared
    with the k-th such steps of the group's episodes (a per-turn baseline: a first search
    with other first calls, not with the closing calls)."""
    raw: list[list[tuple[int, str, int, float]]] = []
    at: dict[tuple[str, int], list[float]] = {}
    for t in group:
        seen: dict[str, int] = {}
        ep = []
        for r in sorted(t.rewards, key=lambda r: (r.step_order or 0, r.name)):
            if r.step_order is None or r.name not in spec.step_weights:
                continue
            k = seen[r.name] = seen.get(r.name, -1) + 1
            ep.append((r.step_order, r.name, k, r.value))
            at.setdefault((r.name, k), []).append(r.value)
        raw.append(ep)
    mean = {key: sum(vals) / len(vals) for key, vals in at.items()}
    out: list[dict[int, float]] = []
    for ep in raw:
        credit: dict[int, float] = {}
        for order, name, k, value in ep:
            extra = spec.step_weights[name] * (value - mean[(name, k)])
            credit[order] = credit.get(order, 0.0) + extra
        out.append(credit)
    return out


@dataclass(frozen=True)
class Sample:
    """One model call to learn from (a step), with what the algorithm needs."""

    role: str
    episode_id: str
    step_id: int
    question_key: str
    prompt: str
    frames: list[tuple[str, int]]
    token_ids: list[int]
    old_logprobs: list[float]
    adapter_version: str | None
    reward: float
    advantage: float = 0.0
    messages: list[dict[str, Any]] | None = None  # the prompt layout, for exact replay
    rejected_token_ids: list[int] | None = None  # DPO: the rejected completion


@dataclass
class Dataset:
    """Samples plus their lineage and the reasons for what was left out."""

    algorithm: str
    spec: RewardSpec
    samples: list[Sample] = field(default_factory=list)
    episode_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    # roles whose samples are per-step groups, and the reward their replies were judged by
    resampled: dict[str, dict[str, float]] = field(default_factory=dict)

    def rewards(self) -> dict[str, Any]:
        """The reward components and weights the samples were built with: the episode's and
        the steps' (``spec``), and the per-step groups' of the roles resampled."""
        out: dict[str, Any] = {"episode": self.spec.weights, "step": self.spec.step_weights}
        return {**out, "resampled": self.resampled} if self.resampled else out

    @property
    def empty_reason(self) -> str | None:
        """Why the dataset is empty, in words a user can act on; None when it is not."""
        if self.samples:
            return None
        since = self.filters.get("since") or self.filters.get("since_run") or "the beginning"
        roles = ",".join(self.filters.get("roles") or []) or "any role"
        if self.algorithm == "grpo":
            return (
                f"no GRPO samples: {self.counts.get('groups', 0)} groups with >= "
                f"{self.filters.get('min_rollouts', 2)} rollouts since {since} "
                f"({self.counts.get('zero_variance', 0)} dropped for equal rewards, "
                f"{self.counts.get('stale', 0)} as too stale) and "
                f"steps of {roles}; run jobs with rollouts >= 2 and ground truth "
                "(evaluation runs' answers are never training data)"
            )
        if self.algorithm == "dpo":
            return (
                f"no DPO pairs: {self.counts.get('groups', 0)} questions since {since}, "
                f"{self.counts.get('below_margin', 0)} below the reward margin, "
                f"{self.counts.get('prompt_mismatch', 0)} without matching prompts, "
                f"{self.counts.get('same_decision', 0)} whose matching replies decide alike, "
                f"{self.counts.get('critic_pairs', 0)} critic pairs (two critiques of one "
                "answer, different decisions and outcomes)"
            )
        return (
            f"no SFT samples: no episode since {since} reached the reward threshold "
            f"{self.filters.get('threshold')} ({self.counts.get('episodes', 0)} episodes seen; "
            "evaluation runs' answers are never training data)"
        )

    def manifest(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "reward_spec": self.rewards(),
            "samples": len(self.samples),
            "episodes": len(self.episode_ids),
            "counts": self.counts,
            "filters": {k: str(v) for k, v in self.filters.items()},
        }


def _sample(step: StepRecord, t: Trajectory, reward: float, advantage: float = 0.0) -> Sample:
    return Sample(
        step.role,
        t.episode.id,
        step.id,
        t.episode.question_key,
        step.prompt,
        list(step.frames),
        step.token_ids,
        step.logprobs,
        step.adapter_version,
        reward,
        advantage,
        messages=step.messages,
    )


def _filters(
    roles: Sequence[str] | None, since: datetime | None, since_run: str | None, **more: Any
) -> dict[str, Any]:
    # evaluation traffic is never training data (EpisodeFilter.evaluations)
    return {"roles": list(roles) if roles else None, "since": since, "since_run": since_run,
            "evaluations": False, **more}  # fmt: skip


def _stale(t: Trajectory, roles: Sequence[str] | None, allowed: Mapping[str, set[str]]) -> bool:
    """Whether an episode has a step (of a trained role) sampled by a version not allowed."""
    return any(
        s.role in allowed and s.adapter_version not in allowed[s.role]
        for s in t.steps
        if not roles or s.role in roles
    )


def build_grpo(
    store: TrajectoryStore,
    spec: RewardSpec | None = None,
    roles: Sequence[str] | None = None,
    since: datetime | None = None,
    since_run: str | None = None,
    min_rollouts: int = 2,
    normalise_std: bool = True,
    allowed_versions: Mapping[str, set[str]] | None = None,
) -> Dataset:
    """GRPO samples: every step of ``roles`` in groups of >= ``min_rollouts`` episodes.

    ``allowed_versions`` (role -> adapter versions) bounds staleness: a group with an
    episode sampled by another version of a trained role is dropped (counted ``stale``);
    the ratio of what is kept is corrected with the recorded sampling logprobs."""
    if min_rollouts < 2:
        raise InvalidInput(
            f"min_rollouts={min_rollouts}: GRPO compares rollouts, use >= 2 "
            "(or algo='sft' for single episodes)"
        )
    spec = spec or RewardSpec()
    ds = Dataset("grpo", spec, filters=_filters(roles, since, since_run, min_rollouts=min_rollouts,
                                                normalise_std=normalise_std))  # fmt: skip
    ds.counts = {"groups": 0, "zero_variance": 0, "stale": 0}
    for group in store.iter_groups(
        min_rollouts=min_rollouts, since=since, since_run=since_run, evaluations=False
    ):
        ds.counts["groups"] += 1
        if allowed_versions and any(_stale(t, roles, allowed_versions) for t in group.trajectories):
            ds.counts["stale"] += 1
            continue
        rewards = [spec.total(t) for t in group.trajectories]
        if max(rewards) - min(rewards) < 1e-9:
            ds.counts["zero_variance"] += 1
            continue
        adv = grpo_advantages(rewards, [0] * len(rewards), normalise_std).tolist()
        credit = _step_credit(group.trajectories, spec)
        for t, r, a, extra in zip(group.trajectories, rewards, adv, credit, strict=True):
            ds.episode_ids.append(t.episode.id)
            ds.samples += [
                _sample(s, t, r, a + extra.get(s.order, 0.0))
                for s in t.steps
                if (not roles or s.role in roles) and s.token_ids
            ]
    return ds


def decision(step: StepRecord) -> str:
    """What a step decided, without its incidental fields: the reasoner's answer (not its
    confidence or cited times), a tool call without what it surfaced, a plan or critique as
    parsed; None (unparsed) is a decision of its own. Two replies with equal decisions make
    no DPO pair: the better episode did not win by that reply."""
    parsed = step.parsed
    if isinstance(parsed, dict):
        if step.role == "reasoner":
            parsed = {"choice": parsed.get("choice"), "answer": parsed.get("answer")}
        else:
            parsed = {k: v for k, v in parsed.items() if k != "surfaced"}
    return json.dumps(parsed, sort_keys=True, default=str)


# where a role's reply has decided (`decision_tokens`): the reasoner once its answer's string
# is closed, the critic once it has said whether it accepts, the selector once it has named
# its tool (not the query or times that follow); other roles' whole replies decide
DECISION_END = {
    "reasoner": re.compile(r'^\s*\{\s*"answer"\s*:\s*"(?:[^"\\]|\\.)*"'),
    "critic": re.compile(r'"accept"\s*:\s*(?:true|false)'),
    "selector": re.compile(r'^\s*\{\s*"tool"\s*:\s*"(?:search|find|zoom|inspect)"'),
}


def decision_tokens(
    role: str, token_ids: Sequence[int], decode: Callable[[Sequence[int]], str]
) -> int:
    """How many of a reply's first tokens make its decision (`DECISION_END`): e.g. the
    reasoner's ``{"answer": "red cube"`` of ``{"answer": "red cube", "confidence": 0.9,
    "evidence": [143.0]}``. All of them for the other roles, and for a reply whose decision
    cannot be found (unparsed: the whole reply is what it did)."""
    end = DECISION_END.get(role)
    if end is not None:
        for k in range(1, len(token_ids) + 1):
            if end.search(decode(token_ids[:k])):
                return k
    return len(token_ids)


def build_dpo(
    store: TrajectoryStore,
    spec: RewardSpec | None = None,
    roles: Sequence[str] | None = None,
    since: datetime | None = None,
    since_run: str | None = None,
    margin: float = 0.5,
) -> Dataset:
    """DPO pairs: best vs worst episode of a question, steps with identical prompts and
    different decisions (`decision`) paired. The critic's pairs follow the outcome instead
    (`critic_pairs`)."""
    spec = spec or RewardSpec()
    ds = Dataset("dpo", spec, filters=_filters(roles, since, since_run, margin=margin))
    ds.counts = {"groups": 0, "below_margin": 0, "prompt_mismatch": 0, "critic_pairs": 0,
                 "same_decision": 0}  # fmt: skip
    want_critic = not roles or "critic" in roles
    others = [r for r in roles or ["planner", "selector", "reasoner"] if r != "critic"]
    for group in store.iter_groups(
        min_rollouts=2, since=since, since_run=since_run, evaluations=False
    ):
        ds.counts["groups"] += 1
        if want_critic:
            pairs = critic_pairs(group.trajectories)
            ds.samples += pairs
            ds.counts["critic_pairs"] += len(pairs)
            ds.episode_ids += list(dict.fromkeys(p.episode_id for p in pairs))
        if not others:
            continue
        ranked = sorted(group.trajectories, key=spec.total)
        worst, best = ranked[0], ranked[-1]
        rb, rw = spec.total(best), spec.total(worst)
        if rb - rw < margin:
            ds.counts["below_margin"] += 1
            continue
        paired = alike = False
        for s_best in best.steps:
            if s_best.role not in others:
                continue
            match = next(
                (
                    s
                    for s in worst.steps
                    if s.role == s_best.role
                    and s.prompt == s_best.prompt
                    and s.frames == s_best.frames
                    and s.token_ids != s_best.token_ids
                ),
                None,
            )
            if match is None:
                continue
            if decision(match) == decision(s_best):  # worded apart, decided alike
                alike = True
                continue
            sample = _sample(s_best, best, rb)
            ds.samples.append(Sample(**{**asdict(sample), "rejected_token_ids": match.token_ids}))
            paired = True
        if paired:
            ds.episode_ids += [best.episode.id, worst.episode.id]
        else:
            ds.counts["same_decision" if alike else "prompt_mismatch"] += 1
    return ds


_PROPOSED = re.compile(r"Proposed answer: (.*) \(confidence")


def _critiques(t: Trajectory) -> list[tuple[StepRecord, str, bool, float]]:
    """The critic's steps of an episode: ``(step, answer judged, accepted, outcome)`` where
    the outcome is the episode's final accuracy (what its decision led to)."""
    outcome = t.reward("accuracy")
    if outcome is None:
        return []
    out = []
    for s in t.steps:
        m = _PROPOSED.search(s.prompt)
        if s.role == "critic" and m and isinstance(s.parsed, dict) and s.token_ids:
            out.append((s, m.group(1).strip(), bool(s.parsed.get("accept")), outcome))
    return out


def critic_pairs(group: Sequence[Trajectory]) -> list[Sample]:
    """Critic-V-style DPO pairs from a group: two critiques of the same answer on the same
    input (prompt and frames: the evidence judged) with different decisions; chosen is the
    one whose decision led to the right final answer. A critique made on other evidence is
    not paired: DPO scores both replies under the chosen one's prompt."""
    steps = [(t, c) for t in group for c in _critiques(t)]
    out: list[Sample] = []
    used: set[int] = set()
    for t_good, (good, answer, accepted, outcome) in steps:
        if outcome < 1.0 or good.id in used:
            continue
        bad = next(
            (
                (t, c[0]) for t, c in steps
                if c[1] == answer and c[2] != accepted and c[3] < 1.0 and c[0].id not in used
                and c[0].prompt == good.prompt and c[0].frames == good.frames
            ),
            None,
        )  # fmt: skip
        if bad is None:
            continue
        used |= {good.id, bad[1].id}
        sample = _sample(good, t_good, outcome)
        out.append(Sample(**{**asdict(sample), "rejected_token_ids": bad[1].token_ids}))
    return out


def fused_find(
    t: Trajectory, encode: Callable[[str], list[int]]
) -> tuple[list[StepRecord], dict[int, list[int]]] | None:
    """The episode as it would have gone with each search that a bare inspect follows at once
    made as one ``find`` of that query (a search, then a bare inspect: `vidra.agents.search`),
    so with the same frames shown, answer and outcome and one tool call fewer a pair: its
    steps without those inspects, and each fused search step's id -> the find's reply tokens
    (``encode``: a reply text's token ids, no special tokens; the recorded reply's end, such
    as an end-of-turn token, is kept). None when it has no such pair."""
    steps, drop, ids = list(t.steps), set[int](), dict[int, list[int]]()
    for a, b in pairwise(steps):
        pa, pb = a.parsed, b.parsed
        if a.role != "selector" or b.role != "selector":
            continue
        if not (isinstance(pa, dict) and isinstance(pb, dict) and is_tool_call(pa)
                and is_tool_call(pb)):  # fmt: skip
            continue
        if pa.get("tool") != "search" or pb.get("tool") != "inspect" or pb.get("times"):
            continue
        query = str(pa.get("query", ""))
        head = encode(json.dumps({"tool": "search", "query": query}))
        if not query or a.token_ids[: len(head)] != head:
            continue  # a reply worded otherwise than the constrained one: left as it was
        ids[a.id] = encode(json.dumps({"tool": "find", "query": query})) + a.token_ids[len(head) :]
        drop.add(b.id)
    return ([s for s in steps if s.id not in drop], ids) if ids else None


def _tool(s: StepRecord, finds: Mapping[int, list[int]]) -> str | None:
    """The tool a selector step called (``find`` where `fused_find` made it one), else None."""
    if s.id in finds:
        return "find"
    p = s.parsed
    return str(p.get("tool")) if isinstance(p, dict) and is_tool_call(p) else None


def build_sft(
    store: TrajectoryStore,
    spec: RewardSpec | None = None,
    roles: Sequence[str] | None = None,
    since: datetime | None = None,
    since_run: str | None = None,
    threshold: float = 1.0,
    best_of_group: bool = False,
    fuse_find: Callable[[str], list[int]] | None = None,
    tools: Sequence[str] | None = None,
) -> Dataset:
    """SFT samples: every step of ``roles`` in episodes whose reward reaches ``threshold``.

    ``best_of_group``: of the rollouts of one question (an episode's group), only those with
    the group's highest reward (ties all kept): with a tool cost weighed in, a question's
    cheapest right path (best-of-n rejection sampling, as ReST and RFT).

    ``fuse_find`` (a tokenizer's encoding of a reply text): an episode with a search that a
    bare inspect follows at once is learned as it would have gone with one find instead
    (`fused_find`): the same outcome, and ``tool_cost``'s weight more reward a pair fused.
    The find is not the model's sampled reply (its logprobs are NaN): this teaches the call
    from what the record shows it does, not from its own outcomes.

    ``tools``: of the selector's replies only its calls of these tools are learned (a fused
    find is a find), its other replies in the kept episodes left out (counted as
    ``other_calls``): a tool its rollouts seldom chose taught without the calls they mostly
    made outweighing it. None: every reply."""
    spec = spec or RewardSpec()
    ds = Dataset("sft", spec, filters=_filters(roles, since, since_run, threshold=threshold,
                                               best_of_group=best_of_group,
                                               fuse_find=fuse_find is not None,
                                               tools=list(tools) if tools else None))  # fmt: skip
    ds.counts = {"episodes": 0, "below_best": 0} if best_of_group else {"episodes": 0}
    if tools:
        ds.counts["other_calls"] = 0
    if fuse_find is not None:
        ds.counts["fused"] = 0
    kept: list[tuple[Trajectory, float, dict[int, list[int]]]] = []
    best: dict[str, float] = {}
    for t in store.iter_trajectories(since=since, since_run=since_run, evaluations=False):
        ds.counts["episodes"] += 1
        r, finds = spec.total(t), dict[int, list[int]]()
        fused = fused_find(t, fuse_find) if fuse_find is not None else None
        if fused is not None:
            steps, finds = fused
            t = Trajectory(t.episode, steps, t.rewards)
            r += spec.weights.get("tool_cost", 0.0) * len(finds)  # tool_cost: -1 a call
            ds.counts["fused"] += 1
        if r >= threshold:
            kept.append((t, r, finds))
            best[t.episode.group_id] = max(best.get(t.episode.group_id, r), r)
    for t, r, finds in kept:
        if best_of_group and r < best[t.episode.group_id] - 1e-9:
            ds.counts["below_best"] += 1
            continue
        before = len(ds.samples)
        for s in t.steps:
            if (not roles or s.role in roles) and s.token_ids:
                if tools and s.role == "selector" and _tool(s, finds) not in tools:
                    ds.counts["other_calls"] += 1
                    continue
                sample = _sample(s, t, r)
                if s.id in finds:
                    ids = finds[s.id]
                    sample = replace(sample, token_ids=ids, old_logprobs=[math.nan] * len(ids))
                ds.samples.append(sample)
        if len(ds.samples) > before:  # the lineage: episodes a sample was drawn from
            ds.episode_ids.append(t.episode.id)
    return ds
