"""The oracle that stands in for the model while vidra-tiny's training trajectories are
recorded: it knows a synthetic world's ground truth and answers every role's prompt as a
good policy would, from what that prompt shows (never from hidden state a learned policy
could not see, except where perception is the task: captions and answers).

- captioner: the objects on screen at the asked time, in `ground_caption`'s words;
- planner: what to look for and a frame budget;
- selector, storyboard prompt: the evidence times; search prompt: one search for the
  options (or the object or colour the question names), then ``{"tool": "inspect"}`` (the
  moments found); a question about one moment inspects that moment (its time as written);
- reasoner: the right option (wrong on a seeded share of first rounds, for the critic);
- critic: accept right answers, reject wrong ones.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Sequence

from vidra.models.protocol import ChatRequest, ImagePart, TextPart, VideoPart
from vidra.video.synthetic import Question, World
from vidra.video.synthetic.questions import evidence_times

__all__ = [
    "QUADRANT_ORDER",
    "answer_json",
    "evidence_times",
    "ground_caption",
    "look_for",
    "oracle",
    "question_line",
    "search_query",
    "text_of",
]

QUADRANT_ORDER = ("top-left", "top-right", "bottom-left", "bottom-right")
_ROLE_TAG = re.compile(r"\[(planner|selector|search|reasoner|critic|reflect|captioner)/v\d+\]")


def ground_caption(world: World, t: float) -> str:
    """What the captioner should say at ``t``: each visible object as ``colour shape place``
    in reading order of the places, ``;``-separated, or ``nothing``."""
    objs = sorted(world.visible_at(t), key=lambda o: QUADRANT_ORDER.index(o.quadrant))
    return "; ".join(f"{o.colour} {o.shape} {o.quadrant}" for o in objs) or "nothing"


def text_of(req: ChatRequest) -> tuple[str, list[float]]:
    """The text of the request's last message (its text parts joined) and the times of the
    frames it shows."""
    text, times = "", []
    for msg in req.messages:
        if isinstance(msg.content, str):
            text = msg.content
            continue
        text = "".join(p.text for p in msg.content if isinstance(p, TextPart))
        for part in msg.content:
            if isinstance(part, ImagePart) and part.time is not None:
                times.append(float(part.time))
            elif isinstance(part, VideoPart):
                times += [float(t) for t in part.times]
    return text, times


def question_line(text: str) -> str:
    m = re.search(r"Question: (.*)\n", text)
    return m.group(1) if m else ""


def answer_json(q: Question, index: int, shown: Sequence[float]) -> str:
    """The oracle reasoner's reply: option ``index`` by its text, with the shown frames near
    the evidence as its evidence."""
    near = [t for t in shown if any(abs(t - e) <= 2.0 for e in evidence_times(q))]
    return json.dumps(
        {"answer": q.options[index], "confidence": 0.9, "evidence": [round(t, 1) for t in near[:3]]}
    )


def look_for(q: Question) -> str:
    """The oracle planner's ``look_for``: the question's first clause."""
    return q.text.rstrip("?").split(",")[0][:60]


def search_query(q: Question) -> str | None:
    """What the oracle searches for: the options when they name objects, the object or
    colour the question names otherwise; None for a question about one moment (state)."""
    if q.kind == "state":
        return None
    if q.kind in ("needle", "ordering"):
        return ", ".join(q.options)
    m = re.search(r"(?:an?|the) ((?:\w+ )?\w+?)(?: object)? (?:appear|visible|is)", q.text)
    return re.sub(r" object$", "", m.group(1)) if m else q.text


def _search_reply(q: Question, text: str) -> str:
    """Search the question's query unless the results show it, then inspect what was found
    (a question about one moment: a bare inspect looks at the moment it names)."""
    if q.kind == "state":
        return json.dumps({"tool": "inspect"})
    query = search_query(q)
    history = text.split("Results so far:\n", 1)[-1].split("\nNext, reply", 1)[0]
    if query and f"search {query!r}:" not in history:
        return json.dumps({"tool": "search", "query": query})
    return json.dumps({"tool": "inspect"})


def _storyboard_reply(q: Question, text: str) -> str:
    m = re.search(r"at most (\d+) frames", text)
    n = int(m.group(1)) if m else 8
    targets = evidence_times(q)
    if not targets:  # nothing to find (e.g. "how many ... ?" with answer 0): sweep
        m = re.search(r"Video: (\d+) s", text)
        duration = float(m.group(1)) if m else 60.0
        targets = [round(duration * (k + 0.5) / n, 1) for k in range(n)]
    if "Critic feedback" in text:  # second look: around the targets
        targets = [round(max(0.0, t + d), 1) for t in targets for d in (-1.0, 1.0)]
    return json.dumps({"segments": [], "times": targets[: max(1, n)]})


def _critic_reply(q: Question, text: str) -> str:
    m = re.search(r"Proposed answer: (.*) \(confidence", text)
    proposed = m.group(1).strip() if m else ""
    right = proposed in (q.answer, "ABCDEFGHIJ"[q.answer_index])
    verdict = (
        {"score": 1.0, "accept": True, "feedback": ""}
        if right
        else {"score": 0.0, "accept": False, "feedback": "the frames do not show that"}
    )
    return json.dumps(verdict)


def oracle(
    questions: Sequence[Question],
    wrong_rate: float,
    seed: int,
    budget: int = 16,
    world: World | None = None,
) -> Callable[[ChatRequest], str]:
    """The script of an oracle model for ``questions`` (matched by their text) of ``world``
    (needed to caption); its plans ask for ``budget`` frames."""
    by_text = {q.text: q for q in questions}

    def respond(req: ChatRequest) -> str:
        text, shown = text_of(req)
        role_m = _ROLE_TAG.search(text)
        if role_m is not None and role_m.group(1) == "captioner":
            return ground_caption(world, shown[0]) if world is not None and shown else "nothing"
        q = by_text.get(question_line(text))
        if role_m is None or q is None:
            return "{}"
        role = role_m.group(1)
        if role == "planner":
            return json.dumps({"look_for": look_for(q), "sub_questions": [], "hints": [],
                               "frame_budget": budget})  # fmt: skip
        if role == "search":
            return _search_reply(q, text)
        if role == "selector":
            return _storyboard_reply(q, text)
        if role in ("reasoner", "reflect"):
            revising = "Critic feedback" in text or role == "reflect"
            wrong = (
                not revising
                and zlib.crc32(f"{seed}:{q.id}".encode()) % 1000 < wrong_rate * 1000
                and len(q.options) > 1
            )
            index = (q.answer_index + 1) % len(q.options) if wrong else q.answer_index
            return answer_json(q, index, shown)
        return _critic_reply(q, text)

    return respond
