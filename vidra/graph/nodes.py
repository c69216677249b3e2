"""Graph nodes: ``State -> partial update``. Each asks one agent and appends its steps.

Nodes get frames through the reader by index, pass them to the agent, and drop them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from vidra.agents import (
    Answer,
    Plan,
    SelectRequest,
    VideoFacts,
    critique,
    plan,
    reason,
    reflect,
    select_frames,
)
from vidra.agents.findings import index_context
from vidra.graph.deps import Deps
from vidra.graph.state import EpisodeState

__all__ = ["critique_node", "finalize_node", "plan_node", "reason_node", "select_node"]


def _facts(state: EpisodeState) -> VideoFacts:
    return VideoFacts(
        state["video_id"],
        state["video_path"],
        state["duration"],
        state["fps"],
        state["frame_count"],
    )


def _index_notes(deps: Deps, state: EpisodeState, times: list[float]) -> str:
    """What the index says for the reasoner: the findings of the searches made, and the
    captions at the frames shown ("" when the strategy uses no index)."""
    if deps.index is None:
        return ""
    return index_context(deps.index, state["video_id"], state.get("searches") or [], times,
                         deps.tools.k)  # fmt: skip


def _frames(deps: Deps, state: EpisodeState, indices: list[int]) -> tuple[np.ndarray, list[float]]:
    facts = _facts(state)
    frames = deps.reader.frames(facts.path, indices, size=deps.frame_size)
    return frames, [facts.time_of(i) for i in indices]


def plan_node(state: EpisodeState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Ask the planner what to look for."""
    deps = runtime.context
    deps.check_cancelled()
    budget = state["budget"]["max_frames"]
    lines = deps.subtitles(state.get("subtitles"), [], state["question"])
    result = plan(
        deps.model,
        _facts(state),
        state["question"],
        state["options"],
        deps.sampling,
        budget,
        lines,
    )
    return {"plan": result.value.model_dump(mode="json"), "steps": result.steps}


def select_node(state: EpisodeState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Ask the frame selector for new frames within the remaining budget."""
    deps = runtime.context
    deps.check_cancelled()
    budget = state["budget"]
    seen = set(state["seen"])
    plan_value = Plan.model_validate(state["plan"] or {})
    planned = plan_value.frame_budget if deps.plan_budget else None
    cap = min(budget["max_frames"], planned or budget["max_frames"])
    n = max(0, min(budget["frames_per_round"], cap - len(seen)))
    last = state["answers"][-1] if state["answers"] else None
    feedback = state["critiques"][-1]["feedback"] if state["critiques"] else ""
    req = SelectRequest(
        facts=_facts(state),
        question=state["question"],
        plan=plan_value,
        seen=seen,
        n=n,
        round=state["rounds"],
        model=deps.model,
        reader=deps.reader,
        sampling=deps.selector_sampling or deps.sampling,
        evidence=list(last["evidence"]) if last else [],
        feedback=feedback,
        storyboard_size=deps.storyboard_size,
        options=state["options"],
        index=deps.index,
        tools=deps.tools,
    )
    result = select_frames(deps.strategy, req)
    clips = list(state.get("clips") or [])
    return {
        "latest": result.indices,
        "seen": sorted(seen | set(result.indices)),
        "clips": list(dict.fromkeys([*clips, *result.clips])),
        "searches": list(dict.fromkeys([*(state.get("searches") or []), *result.searches])),
        "steps": result.steps,
    }


def reason_node(state: EpisodeState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Answer from every frame seen so far (time order)."""
    deps = runtime.context
    deps.check_cancelled()
    seen = state["seen"] or [0]
    frames, times = _frames(deps, state, seen)
    feedback = state["critiques"][-1]["feedback"] if state["critiques"] else ""
    facts = _facts(state)
    if deps.reflect and state["answers"]:
        previous = Answer.model_validate(state["answers"][-1])
        result = reflect(
            deps.model,
            facts,
            state["question"],
            state["options"],
            frames,
            times,
            deps.sampling,
            previous,
            deps.answer_options,
        )
    else:
        result = reason(
            deps.model,
            facts,
            state["question"],
            state["options"],
            frames,
            times,
            deps.sampling,
            feedback,
            deps.reasoner_samples,
            deps.answer_options,
            deps.subtitles(state.get("subtitles"), times, state["question"]),
            _index_notes(deps, state, times),
        )
    return {
        "answers": [result.value.model_dump(mode="json")],
        "rounds": state["rounds"] + 1,
        "steps": result.steps,
    }


def critique_node(state: EpisodeState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Judge the latest answer; decide accept, revise, or finalize (budget spent)."""
    deps = runtime.context
    deps.check_cancelled()
    facts = _facts(state)
    answer = Answer.model_validate(state["answers"][-1])
    previous = Answer.model_validate(state["answers"][-2]) if len(state["answers"]) > 1 else None
    seen = state["seen"] or [0]
    cited = sorted({min(seen, key=lambda i: abs(facts.time_of(i) - t)) for t in answer.evidence})
    shown = cited[:4] or (state["latest"] or seen)[-4:]
    frames, times = _frames(deps, state, shown)
    verdict = critique(
        deps.model,
        facts,
        state["question"],
        state["options"],
        answer,
        frames,
        times,
        [facts.time_of(i) for i in seen],
        previous,
        deps.sampling,
        deps.critic_threshold,
    )
    budget = state["budget"]
    can_revise = (
        state["rounds"] < budget["max_rounds"]
        and len(state["seen"]) < budget["max_frames"]
        and time.time() < state["deadline"]
    )
    decision = "accept" if verdict.accept else ("revise" if can_revise else "finalize")
    record = {
        "score": verdict.score,
        "accept": verdict.accept,
        "feedback": verdict.feedback,
        "rules": verdict.rule_failures,
        "why": verdict.why,
        "decision": decision,
    }
    return {"critiques": [record], "decision": decision, "steps": verdict.steps}


def finalize_node(state: EpisodeState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Settle the final answer and compute the episode's reward components."""
    last = state["answers"][-1] if state["answers"] else None
    final = {
        "answer": last["answer"] if last else None,
        "choice": last["choice"] if last else None,
        "confidence": last["confidence"] if last else 0.0,
        "evidence": last["evidence"] if last else [],
        "frames_used": len(state["seen"]),
        "rounds": state["rounds"],
        "accepted": bool(state["critiques"] and state["critiques"][-1]["accept"]),
        "timed_out": time.time() >= state["deadline"],
    }
    rewards = runtime.context.rewards(dict(state), final)
    return {"final": final, "rewards": rewards}
