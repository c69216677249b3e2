"""`build_graph`: every node and edge of the episode in one place, with typed routers.

    plan -> select_frames -> reason -> critique --accept/finalize--> finalize -> END
                 ^                          |
                 +--------- revise ---------+

Bounded by max rounds, max frames and a deadline (checked by the routers).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from vidra.graph.deps import Deps
from vidra.graph.nodes import critique_node, finalize_node, plan_node, reason_node, select_node
from vidra.graph.state import EpisodeState

__all__ = ["build_graph"]


def after_plan(state: EpisodeState) -> Literal["select_frames", "finalize"]:
    return "finalize" if time.time() >= state["deadline"] else "select_frames"


def after_select(state: EpisodeState) -> Literal["reason", "finalize"]:
    if time.time() >= state["deadline"]:
        return "finalize"
    if not state["latest"] and state["answers"]:  # nothing new to look at: no point re-reasoning
        return "finalize"
    return "reason"


def after_critique(state: EpisodeState) -> Literal["select_frames", "finalize"]:
    return "select_frames" if state["decision"] == "revise" else "finalize"


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the episode graph (optionally with a LangGraph checkpointer)."""
    g = StateGraph(EpisodeState, context_schema=Deps)
    g.add_node("plan", plan_node)
    g.add_node("select_frames", select_node)
    g.add_node("reason", reason_node)
    g.add_node("critique", critique_node)
    g.add_node("finalize", finalize_node)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", after_plan)
    g.add_conditional_edges("select_frames", after_select)
    g.add_edge("reason", "critique")
    g.add_conditional_edges("critique", after_critique)
    g.add_edge("finalize", END)
    return g.compile(checkpointer=checkpointer)
