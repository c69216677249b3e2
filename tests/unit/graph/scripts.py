"""A deterministic scripted team for crash tests (importable by subprocesses)."""

from __future__ import annotations

from pathlib import Path

from vidra.models import ChatRequest
from vidra.models.scripted import ScriptedChatModel

PLAN = '{"look_for": "shapes", "hints": [], "frame_budget": 32}'


class Team(ScriptedChatModel):
    """Planner plans, reasoner answers A, critic always asks for another look."""

    def __init__(self, log: Path | None = None, latency_s: float = 0.0) -> None:
        super().__init__(self.reply, latency_s=latency_s)
        self.log = log

    @property
    def adapters(self) -> list[str]:
        return ["planner", "selector", "reasoner", "critic"]

    def reply(self, req: ChatRequest) -> str:
        if self.log is not None:
            with open(self.log, "a") as fh:
                fh.write(f"{req.adapter}\n")
        return {
            "planner": PLAN,
            "reasoner": '{"answer": "A", "confidence": 0.6, "evidence": []}',
            "critic": '{"score": 0.3, "accept": false, "feedback": "look again"}',
        }[req.adapter or ""]
