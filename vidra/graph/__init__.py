"""Orchestration: the episode state, the LangGraph wiring, checkpointers and the job runner.

Never decodes video or builds prompts itself; nodes call agents, agents call the model.
"""

from vidra.graph.checkpoint import open_checkpointer, thread_id
from vidra.graph.deps import Deps, JobCancelled
from vidra.graph.graph import build_graph
from vidra.graph.runner import JobRunner, run_episode
from vidra.graph.state import Budget, EpisodeState, initial_state

__all__ = [
    "Budget",
    "Deps",
    "EpisodeState",
    "JobCancelled",
    "JobRunner",
    "build_graph",
    "initial_state",
    "open_checkpointer",
    "run_episode",
    "thread_id",
]
