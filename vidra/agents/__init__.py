"""Agents: planner, frame selector, reasoner, critic. Each builds versioned prompts, parses
messy output tolerantly, repairs once, then falls back; every model call yields a step.

Agents never talk to SQL and hold frames only for the duration of a call.
"""

from vidra.agents.base import AgentResult, call_agent, render_prompt
from vidra.agents.context import VideoFacts
from vidra.agents.critic import Verdict, check_rules, critique
from vidra.agents.planner import plan
from vidra.agents.reasoner import reason, reflect, vote
from vidra.agents.schemas import Answer, Critique, Plan, Selection
from vidra.agents.selector import STRATEGIES, SelectRequest, SelectResult, select_frames

__all__ = [
    "STRATEGIES",
    "AgentResult",
    "Answer",
    "Critique",
    "Plan",
    "SelectRequest",
    "SelectResult",
    "Selection",
    "Verdict",
    "VideoFacts",
    "call_agent",
    "check_rules",
    "critique",
    "plan",
    "reason",
    "reflect",
    "render_prompt",
    "select_frames",
    "vote",
]
