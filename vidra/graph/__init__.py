"""Orchestration: the episode state, the LangGraph wiring, checkpointers and the executors.

Never decodes video, builds prompts or computes rewards itself: nodes call agents, agents call
the model, and rewards arrive through the runtime context (`Deps.rewards`).
"""

from vidra.errors import JobCancelled
from vidra.graph.checkpoint import open_checkpointer, thread_id
from vidra.graph.deps import Deps, RewardFn
from vidra.graph.episode import rollout_seed, run_episode
from vidra.graph.executor import Executor, JobContext, JobRunner, LocalExecutor, execute_job
from vidra.graph.graph import build_graph
from vidra.graph.state import Budget, EpisodeState, initial_state

__all__ = [
    "Budget",
    "Deps",
    "EpisodeState",
    "Executor",
    "JobCancelled",
    "JobContext",
    "JobRunner",
    "LocalExecutor",
    "RewardFn",
    "build_graph",
    "execute_job",
    "initial_state",
    "open_checkpointer",
    "rollout_seed",
    "run_episode",
    "thread_id",
]
