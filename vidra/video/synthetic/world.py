"""The synthetic world: shapes of known colours sitting in known quadrants at known times.

A `World` is pure data, deterministic by seed: scenes (background colours, i.e. shots),
objects (shape x colour x quadrant, on screen during ``[start, end)``), and needles
(brief objects whose shape-colour pair occurs nowhere else). Nothing here moves:
every fact is visible in a single frame, and time comes from timestamps.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidra.errors import InvalidInput

__all__ = [
    "COLOURS",
    "QUADRANTS",
    "SHAPES",
    "Event",
    "Scene",
    "World",
    "WorldObject",
    "WorldSpec",
    "make_world",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "magenta": (220, 60, 210),
    "cyan": (60, 220, 230),
    "white": (245, 245, 245),
    "orange": (250, 140, 20),
}
SHAPES = ("circle", "square", "triangle")
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (28, 28, 28),
    (20, 36, 70),
    (70, 28, 28),
    (24, 60, 34),
    (64, 58, 20),
    (56, 30, 66),
)


_ABSENT = 3


@dataclass(frozen=True)
class WorldSpec:
    """What world to generate. Times are in seconds; rates per minute of video."""

    duration: float = 120.0
    fps: float = 8.0
    width: int = 320
    height: int = 180
    seed: int = 0
    objects_per_minute: float = 2.0
    min_object_s: float = 10.0
    max_object_s: float = 60.0
    needles: int = 1
    needle_s: tuple[float, float] = (2.0, 4.0)
    min_scene_s: float = 30.0
    max_scene_s: float = 180.0

    def validate(self) -> None:
        if self.duration <= 0 or self.fps <= 0:
            raise InvalidInput("duration and fps must be positive")
        if self.width < 16 or self.height < 16:
            raise InvalidInput("width and height must be at least 16 pixels")
        if not 0 < self.min_object_s <= self.max_object_s:
            raise InvalidInput("need 0 < min_object_s <= max_object_s")
        if self.needles < 0 or self.objects_per_minute < 0:
            raise InvalidInput("needles and objects_per_minute must be >= 0")


@dataclass(frozen=True)
class WorldObject:
    """One appearance of an object: on screen during ``[start, end)`` seconds."""

    id: int
    shape: str
    colour: str
    quadrant: str
    start: float
    end: float
    needle: bool = False
    scale: float = 1.0  # size relative to the default (0.8 to 1.2)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    def visible(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Scene:
    """A shot: a background colour during ``[start, end)`` seconds."""

    id: int
    start: float
    end: float
    background: tuple[int, int, int]


@dataclass(frozen=True)
class Event:
    """A ground-truth event: an object entering/leaving, or a scene starting."""

    time: float
    kind: str  # "scene" | "enter" | "leave"
    ref: int  # scene id or object id
    detail: str


@dataclass
class World:
    """A generated world: its spec and everything that happens in it."""

    spec: WorldSpec
    scenes: list[Scene]
    objects: list[WorldObject]
    events: list[Event] = field(default_factory=list)

    def visible_at(self, t: float) -> list[WorldObject]:
        """Objects on screen at ``t`` seconds."""
        return [o for o in self.objects if o.visible(t)]

    def scene_at(self, t: float) -> Scene:
        for s in self.scenes:
            if s.start <= t < s.end:
                return s
        return self.scenes[-1]

    def change_times(self) -> list[float]:
        """Every time at which the picture changes (scene cuts, enters, leaves), with 0."""
        times = {0.0}
        times.update(e.time for e in self.events if e.time < self.spec.duration)
        return sorted(times)

    def count(self, name: str) -> int:
        return sum(1 for o in self.objects if o.name == name)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the spec, then one line per event (time order) as JSON Lines."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "w") as fh:
            fh.write(json.dumps({"spec": asdict(self.spec)}) + "\n")
            for o in self.objects:
                fh.write(json.dumps({"object": asdict(o)}) + "\n")
            for e in self.events:
                fh.write(json.dumps({"event": asdict(e)}) + "\n")
        return p


def _snap(t: float, fps: float) -> float:
    """Round a time to a frame boundary so ground truth and frames agree exactly."""
    return round(t * fps) / fps


def make_world(spec: WorldSpec) -> World:
    """Generate the world described by ``spec`` (same spec, same world)."""
    spec.validate()
    rng = random.Random(spec.seed)
    scenes = _scenes(spec, rng)
    combos = [(s, c) for s in SHAPES for c in COLOURS]
    rng.shuffle(combos)
    # needles' looks occur once; three more looks are kept out of the world as distractors
    reserved = spec.needles + (_ABSENT if spec.needles else 0)
    needle_combos, common = combos[: spec.needles], combos[reserved:]
    busy: dict[str, list[tuple[float, float]]] = {q: [] for q in QUADRANTS}
    objects: list[WorldObject] = []
    for shape, colour in needle_combos:
        obj = _place_needle(spec, rng, busy, len(objects), shape, colour)
        if obj is not None:
            objects.append(obj)
    n_common = round(spec.objects_per_minute * spec.duration / 60.0)
    for _ in range(n_common * 4):  # bounded attempts
        if sum(1 for o in objects if not o.needle) >= n_common:
            break
        shape, colour = rng.choice(common)
        length = rng.uniform(spec.min_object_s, spec.max_object_s)
        start = _snap(rng.uniform(0, max(0.0, spec.duration - length)), spec.fps)
        end = min(spec.duration, _snap(start + length, spec.fps))
        quadrant = rng.choice(QUADRANTS)
        if end - start >= 1.0 / spec.fps and _free(busy[quadrant], start, end, margin=2.0):
            busy[quadrant].append((start, end))
            objects.append(
                WorldObject(
                    len(objects),
                    shape,
                    colour,
                    quadrant,
                    start,
                    end,
                    False,
                    round(rng.uniform(0.8, 1.2), 2),
                )
            )
    objects.sort(key=lambda o: (o.start, o.quadrant))
    objects = [WorldObject(i, *_fields(o)) for i, o in enumerate(objects)]
    return World(spec, scenes, objects, _events(scenes, objects))


def _fields(o: WorldObject) -> tuple[str, str, str, float, float, bool, float]:
    return (o.shape, o.colour, o.quadrant, o.start, o.end, o.needle, o.scale)


def _scenes(spec: WorldSpec, rng: random.Random) -> list[Scene]:
    scenes: list[Scene] = []
    t = 0.0
    last = -1
    while t < spec.duration:
        length = rng.uniform(spec.min_scene_s, spec.max_scene_s)
        end = min(spec.duration, _snap(t + length, spec.fps))
        if spec.duration - end < spec.min_scene_s / 2:
            end = spec.duration
        choice = rng.choice([k for k in range(len(BACKGROUNDS)) if k != last])
        scenes.append(Scene(len(scenes), t, end, BACKGROUNDS[choice]))
        last, t = choice, end
    return scenes


def _free(spans: list[tuple[float, float]], start: float, end: float, margin: float) -> bool:
    return all(end + margin <= a or start >= b + margin for a, b in spans)


def _place_needle(
    spec: WorldSpec,
    rng: random.Random,
    busy: dict[str, list[tuple[float, float]]],
    ident: int,
    shape: str,
    colour: str,
) -> WorldObject | None:
    lo, hi = spec.needle_s
    for _ in range(100):
        length = rng.uniform(lo, hi)
        edge = min(10.0, spec.duration * 0.05)
        start = _snap(rng.uniform(edge, max(edge, spec.duration - length - edge)), spec.fps)
        end = min(spec.duration, _snap(start + length, spec.fps))
        quadrant = rng.choice(QUADRANTS)
        if end > start and _free(busy[quadrant], start, end, margin=2.0):
            busy[quadrant].append((start, end))
            return WorldObject(ident, shape, colour, quadrant, start, end, True, 1.0)
    return None


def _events(scenes: list[Scene], objects: list[WorldObject]) -> list[Event]:
    events = [Event(s.start, "scene", s.id, f"background {s.background}") for s in scenes]
    for o in objects:
        events.append(Event(o.start, "enter", o.id, f"{o.name} at {o.quadrant}"))
        events.append(Event(o.end, "leave", o.id, f"{o.name} at {o.quadrant}"))
    return sorted(events, key=lambda e: (e.time, e.kind != "scene", e.kind, e.ref))
