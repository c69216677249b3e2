"""The synthetic world: procedurally generated videos with ground truth and questions."""

from vidra.video.synthetic.counter import counter_image, read_counter, write_counter_video
from vidra.video.synthetic.encode import VideoWriter
from vidra.video.synthetic.questions import (
    KINDS,
    Question,
    generate_questions,
    read_questions,
    write_questions,
)
from vidra.video.synthetic.render import draw_frame, render_world
from vidra.video.synthetic.world import (
    COLOURS,
    QUADRANTS,
    SHAPES,
    Event,
    Scene,
    World,
    WorldObject,
    WorldSpec,
    make_world,
)

__all__ = [
    "COLOURS",
    "KINDS",
    "QUADRANTS",
    "SHAPES",
    "Event",
    "Question",
    "Scene",
    "VideoWriter",
    "World",
    "WorldObject",
    "WorldSpec",
    "counter_image",
    "draw_frame",
    "generate_questions",
    "make_world",
    "read_counter",
    "read_questions",
    "render_world",
    "write_counter_video",
    "write_questions",
]
