"""vidra-tiny's selector drills are requests built exactly as the agents build them: the
search round as the oracle plays it."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from vidra.pipelines import drills
from vidra.pipelines.heldout import synthetic_world, synthetic_worlds
from vidra.video.synthetic import generate_questions


def _text(req) -> str:  # type: ignore[no-untyped-def]
    return "".join(p.text for p in req.messages[-1].content if hasattr(p, "text"))


def test_selector_drills_copy_the_question_into_the_query_then_inspect(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    (video, _), = synthetic_worlds(tmp_path, [3], 120.0)  # fmt: skip
    world = synthetic_world(3, 120.0)
    qs = generate_questions(world, per_kind=2, kinds=["counting", "grounding", "needle"])
    assert {"counting", "needle"} <= {q.kind for q in qs}
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    out = drills.selector_drills([(video, world, qs)], 8, 4, tok, tok.eos_token_id,
                                 lambda v, w: drills.CaptionIndex.ground(w, 2.0))  # fmt: skip
    assert {role for _, role, _, _ in out} == {"selector"}
    by_q: dict[str, list[tuple[str, dict]]] = {}  # type: ignore[type-arg]
    for key, _, req, ids in out:
        by_q.setdefault(key[2], []).append((_text(req), json.loads(tok.decode(ids[:-1]))))
    for q in qs:
        calls = by_q[q.id]
        assert calls[-1][1] == {"tool": "inspect"}  # ends looking at what was found
        if q.kind == "counting":  # "How many times does a red object appear": search "red"
            colour = q.text.split(" object")[0].split()[-1]
            assert calls[0][1] == {"tool": "search", "query": colour}
            assert f"search '{colour}':\n{colour}: " in calls[1][0]  # its findings, then inspect
        if q.kind == "needle":  # the options were searched before the first call
            assert len(calls) == 1 and f"search {', '.join(q.options)!r}" in calls[0][0]


def test_index_drills_ask_the_reasoner_exactly_what_a_search_episode_asks(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    """The drill for each question equals the reasoner's first request in a real ``search``
    episode (oracle model, index captioned from the ground truth): same text, same frames."""
    from vidra.agents.base import render_prompt
    from vidra.api import Client
    from vidra.config import Settings
    from vidra.models.scripted import ScriptedChatModel
    from vidra.pipelines.oracle import oracle
    from vidra.pipelines.train_tiny import TinyTrainSpec, tiny_agent_settings
    from vidra.video import open_reader

    (video, _), = synthetic_worlds(tmp_path, [5], 120.0)  # fmt: skip
    world = synthetic_world(5, 120.0)
    qs = generate_questions(world, per_kind=2)
    assert {q.kind for q in qs} >= {"counting", "ordering", "grounding", "state"}
    spec = TinyTrainSpec()
    settings = tiny_agent_settings(Settings(data_dir=tmp_path / "home"), spec)
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    reader = open_reader(settings)
    ground = drills.CaptionIndex.ground(world, spec.index_stride_s)
    made = drills.index_drills([(video, world, qs)], reader, settings.agents.frame_size,
                               spec.frames_per_round, tok, tok.eos_token_id,
                               lambda v, w: ground)  # fmt: skip
    by_q = {key[2]: req for key, _, req, _ in made}
    with Client(settings, model=ScriptedChatModel(oracle(qs, 0.0, 0, 16, world))) as client:
        for q in qs:
            ans = client.submit(video, q.text, q.options, q.answer).result(timeout=120)
            step = next(s for s in client.episode(ans.episode_id).steps if s.role == "reasoner")
            drill = by_q[q.id]
            assert render_prompt(drill.messages) == step.prompt, q.kind


def test_caption_scores_count_objects_and_exact_captions() -> None:
    pairs = [("red circle top-left; blue square top-right", "red circle top-left"),
             ("nothing", "nothing"), ("nothing", "green triangle bottom-left")]  # fmt: skip
    assert drills.caption_scores(pairs) == {
        "moments": 3, "exact": round(1 / 3, 4), "object_precision": 0.5, "object_recall": 0.5
    }  # fmt: skip
