"""A minimal perception task on one synthetic frame, for learning tests and `bench/train.py`
(test and benchmark fixture code: it lives outside the package).

Each item is a 112x112 frame holding one coloured disc and a shuffled list of four colour
options; the answer is JSON naming the colour. Small enough that a tiny Qwen2.5-VL learns it
in seconds on CPU, real enough that the model must look at the image to score.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidra.agents.schemas import parse_answer
from vidra.models.protocol import ChatRequest, ImagePart, Message, SamplingParams, TextPart
from vidra.video.synthetic.world import COLOURS

__all__ = ["ColourItem", "cold_start_sft", "colour_items"]

COLOUR_OPTIONS = ("red", "green", "blue", "yellow")


@dataclass(frozen=True)
class ColourItem:
    frame: np.ndarray  # [112, 112, 3] uint8
    options: list[str]
    answer: int  # index into options

    @property
    def text(self) -> str:
        lines = "".join(f"{chr(65 + k)}. {o}\n" for k, o in enumerate(self.options))
        return (
            f"What colour is the object?\nOptions:\n{lines}"
            'Reply with JSON: {"answer": "<colour>"}'
        )

    def answer_json(self, index: int | None = None) -> str:
        return f'{{"answer": "{self.options[self.answer if index is None else index]}"}}'

    def request(self, adapter: str | None, sampling: SamplingParams) -> ChatRequest:
        parts: list[ImagePart | TextPart] = [ImagePart(self.frame, 0.0), TextPart(self.text)]
        return ChatRequest([Message("user", parts)], adapter=adapter, sampling=sampling)

    def layout(self) -> list[dict[str, Any]]:
        """The prompt layout as a step records it (frame 0 in the image slot)."""
        return [
            {
                "role": "user",
                "content": [
                    {"type": "image", "frame": 0, "time": 0.0},
                    {"type": "text", "text": self.text},
                ],
            }
        ]

    def reward(self, text: str) -> float:
        try:
            return float(parse_answer(text, self.options).choice == self.answer)
        except ValueError:
            return 0.0


def colour_items(n: int, seed: int) -> list[ColourItem]:
    """``n`` items, deterministic in ``seed``."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        colour = rng.choice(COLOUR_OPTIONS)
        options = list(COLOUR_OPTIONS)
        rng.shuffle(options)
        img = Image.new("RGB", (112, 112), (28, 28, 28))
        cx, cy = rng.choice([28, 84]), rng.choice([28, 84])
        ImageDraw.Draw(img).ellipse([cx - 18, cy - 18, cx + 18, cy + 18], fill=COLOURS[colour])
        out.append(ColourItem(np.array(img), options, options.index(colour)))
    return out


def cold_start_sft(
    hf: Any, items: list[ColourItem], epochs: int, lr: float = 1e-3, batch: int = 16
) -> None:
    """Brief SFT on the right answers (`vidra.rl.trainer.cold_start_sft`, tower frozen)."""
    from vidra.rl.trainer import cold_start_sft as sft

    greedy = SamplingParams()
    examples = [
        (it.request(None, greedy),
         [*hf.tokenizer.encode(it.answer_json(), add_special_tokens=False), hf.eos_id])
        for it in items
    ]  # fmt: skip
    sft(hf, examples, epochs, lr, batch)
