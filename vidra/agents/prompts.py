"""Versioned prompt templates of the four roles. A template's version is recorded with
every step (in the prompt text) so trajectories stay comparable across prompt changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CRITIC",
    "PLANNER",
    "REASONER",
    "REFLECT",
    "SELECTOR",
    "Prompt",
    "options_block",
    "subtitles_block",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Prompt:
    version: str
    text: str

    def render(self, **values: object) -> str:
        return f"[{self.version}]\n" + self.text.format(**values)


def options_block(options: Sequence[str] | None) -> str:
    if not options:
        return "Answer in a few words.\n"
    return "Options:\n" + "".join(f"{_LETTERS[k]}. {o}\n" for k, o in enumerate(options))


def subtitles_block(lines: str, near_frames: bool = True) -> str:
    """Rendered subtitle lines (``[12.0-15.5s] text``) as a prompt block; "" when none."""
    if not lines:
        return ""
    head = "Subtitles near these frames:" if near_frames else "Subtitles that may matter:"
    return f"{head}\n{lines}\n"


PLANNER = Prompt(
    "planner/v1",
    (
        "You are the planner of a team that answers questions about a long video.\n"
        "Video: {duration:.0f} s at {fps:g} fps.\nQuestion: {question}\n{options}{subtitles}"
        'Reply with JSON: {{"look_for": "<what to find>", "sub_questions": ["..."], '
        '"hints": [[start_s, end_s]], "frame_budget": <frames needed>}}'
    ),
)

SELECTOR = Prompt(
    "selector/v1",
    (
        "You are the frame selector. Above is a storyboard of the video: each image is labelled "
        "with its time. Video: {duration:.0f} s.\nQuestion: {question}\nLook for: {look_for}\n"
        "{feedback}Already seen: {seen}.\nChoose where to look next (at most {n} frames). "
        'Reply with JSON: {{"segments": [[start_s, end_s]], "times": [t_s]}}'
    ),
)

REASONER = Prompt(
    "reasoner/v2",
    (
        "You are the reasoner. Below are frames of the video, each labelled with its time.\n"
        "{subtitles}Question: {question}\n{options}{feedback}"
        'Reply with JSON: {{"answer": "<option letter or text>", "confidence": <0..1>, '
        '"evidence": [<times in s of the frames that show it>]}}'
    ),
)

REFLECT = Prompt(
    "reflect/v2",
    (
        "Think as a {stance} reviewer: {stance_hint}\nQuestion: {question}\n{options}"
        "The previous answer was {previous!r}. Re-answer with JSON: "
        '{{"answer": "<option letter or text>", "confidence": <0..1>, "evidence": [<times s>]}}'
    ),
)

CRITIC = Prompt(
    "critic/v1",
    (
        "You are the critic. Above are the frames the answer cites.\nQuestion: {question}\n"
        "{options}Proposed answer: {answer} (confidence {confidence:.2f}; "
        "evidence at {evidence}).\n"
        "Rule checks: {rules}.\nDoes the evidence support the answer? Reply with JSON: "
        '{{"score": <0..1>, "accept": true|false, "feedback": "<where to look or what to fix>"}}'
    ),
)
