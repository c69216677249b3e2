"""Frames go last in the captioner's and the reasoner's requests, right before the reply, so
their distance to it does not depend on how long the text is. vidra-tiny captioned frames
of late times (whose labels are written longer) as "nothing" while the frame came first."""

from __future__ import annotations

import numpy as np

from vidra.agents.captioner import caption_request
from vidra.agents.reasoner import reasoner_messages
from vidra.models.protocol import ImagePart, SamplingParams, TextPart

FRAME = np.zeros((32, 32, 3), dtype=np.uint8)


def _tail(parts: list) -> int:  # type: ignore[type-arg]
    """How many tokens-worth of parts (by characters) follow the last image."""
    last = max(k for k, p in enumerate(parts) if isinstance(p, ImagePart))
    return sum(len(p.text) for p in parts[last + 1 :] if isinstance(p, TextPart))


def test_the_captioners_frame_is_last_whatever_the_time() -> None:
    early = caption_request(FRAME, 12.0, SamplingParams()).messages[0].content
    late = caption_request(FRAME, 2512.5, SamplingParams()).messages[0].content
    assert isinstance(early[-1], ImagePart) and isinstance(late[-1], ImagePart)
    assert _tail(list(early)) == _tail(list(late)) == 0
    assert "t=2512.5s" in late[0].text and "41:52" in late[0].text  # type: ignore[union-attr]


def test_the_reasoners_frames_follow_the_question_and_what_the_index_says() -> None:
    frames = np.stack([FRAME, FRAME])
    short = reasoner_messages("Which one?", ["a", "b"], frames, [1.0, 2.0])[0].content
    long = reasoner_messages(
        "Which one appears first?", ["a", "b"], frames, [1.0, 2.0],
        captions="Found in the index:\na: 1 moment: 0:01.0-0:03.0",
    )[0].content  # fmt: skip
    assert [type(p) for p in short] == [TextPart, TextPart, ImagePart, TextPart, ImagePart]
    assert _tail(list(short)) == _tail(list(long)) == 0
    assert "Found in the index" in long[0].text  # type: ignore[union-attr]
