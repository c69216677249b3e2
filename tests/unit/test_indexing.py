"""Building a video's index and searching it from an episode: captions from the captioner
role, resumable after a kill, a usable partial index when decoding fails part-way, and the
``search`` selector finding a 3-second needle in a long video with few frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.video.httpd import RangeServer
from vidra import jobs
from vidra.agents.findings import SEARCH_K, find_moments, render_findings
from vidra.agents.parsing import parse_time
from vidra.agents.search import call_kind
from vidra.api import Client
from vidra.config import Settings
from vidra.models.protocol import ChatRequest
from vidra.models.scripted import ScriptedChatModel
from vidra.pipelines.oracle import ground_caption, oracle
from vidra.runtime import Runtime
from vidra.storage import TrajectoryStore
from vidra.video.synthetic import WorldSpec, make_world, render_world
from vidra.video.synthetic.questions import needle_questions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def long_world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    world = make_world(WorldSpec(duration=600, fps=4, width=160, height=90, seed=11))
    return world, render_world(world, tmp_path_factory.mktemp("idx") / "w.mp4", gop_s=4)


class Captioner(ScriptedChatModel):
    """Captions from the world's ground truth (the oracle's captioner), counting calls."""

    def __init__(self, world) -> None:  # type: ignore[no-untyped-def]
        self.world, self.captioned = world, 0
        script = oracle([], 0.0, 0, 16, world)
        super().__init__(lambda req: self._count() or script(req))

    def _count(self) -> None:
        self.captioned += 1


def test_index_is_built_once_and_finds_a_needle(long_world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world, video = long_world
    model = Captioner(world)
    with Runtime(Settings(data_dir=tmp_path), model=model, executor_ok=False) as rt:
        vid = jobs.register_video(rt, video)
        rec = rt.index.ensure(vid)
        assert rec.status == "done" and rec.clips_done == rec.clips_total == 300  # 2 s clips
        assert rt.index.ensure(vid).id == rec.id and model.captioned == 300  # built once
        needle = next(o for o in world.objects if o.needle)
        hits = rt.index.search(vid, needle.name, 8)
        assert hits and hits[0].t1 > needle.start and hits[0].t0 < needle.end
        clip = rt.store.clips([hits[0].id])[0]
        assert clip.caption == ground_caption(world, (clip.t0 + clip.t1) / 2)


def test_a_killed_index_build_resumes_without_redoing_clips(long_world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world, video = long_world
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path), "VIDRA_INDEX__BATCH": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "vidra", "index", str(video)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    settings = Settings(data_dir=tmp_path)
    until = time.monotonic() + 120
    done_before = 0
    while time.monotonic() < until and done_before < 24:
        time.sleep(0.2)
        if (tmp_path / "vidra.db").exists():
            with TrajectoryStore(settings=settings) as store:
                done_before = sum(r.clips_done for r in store.indexes())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 24 <= done_before < 300, "kill the build part-way"
    with TrajectoryStore(settings=settings) as store:
        [rec] = store.indexes()
        before = {c.clip_no: (c.id, c.caption) for c in store.clips_between(rec.id, 0, 600)}
    assert rec.status == "building" and len(before) == rec.clips_done
    model = Captioner(world)
    with Runtime(settings, model=model, executor_ok=False) as rt:
        vid = jobs.register_video(rt, video)
        done = rt.index.ensure(vid)
        after = {c.clip_no: (c.id, c.caption) for c in rt.store.clips_between(done.id, 0, 600)}
    assert done.id == rec.id and done.status == "done" and len(after) == 300
    assert model.captioned == 300 - len(before)  # only the clips the killed build had not done
    assert all(after[n] == v for n, v in before.items())  # and those were not redone


def test_a_source_that_fails_mid_index_leaves_a_usable_partial_index(
    long_world,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    world, video = long_world
    data = video.read_bytes()
    with RangeServer() as srv:
        srv.put("w.mp4", data)
        settings = Settings(data_dir=tmp_path)
        settings.index.batch = 8
        with Runtime(settings, model=Captioner(world), executor_ok=False) as rt:
            vid = jobs.register_video(rt, srv.url("w.mp4"))
            srv.die_after_bytes = srv.bytes_sent + len(data) // 3  # a third of the way in
            rec = rt.index.ensure(vid)
            assert rec.status == "partial" and 0 < rec.clips_done < rec.clips_total
            assert "stopped at" in (rec.error or "") and "searchable" in (rec.error or "")
            first = world.objects[0]
            assert rt.index.search(vid, first.name, 4)  # what was built is searchable


def test_an_image_text_embedder_adds_clips_that_look_like_a_phrase(
    long_world,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    import numpy as np
    from sqlalchemy import text

    from tests.tiny_clip import build_tiny_clip
    from vidra.config import IndexSettings

    world, video = long_world
    clip_dir = build_tiny_clip(tmp_path / "tiny-clip")
    settings = Settings(data_dir=tmp_path, index=IndexSettings(embedder=str(clip_dir), embed_k=3))
    with Runtime(settings, model=Captioner(world), executor_ok=False) as rt:
        vid = jobs.register_video(rt, video)
        rec = rt.index.ensure(vid)
        emb = rt.embedder()
        assert emb is not None and rt.embedder() is emb  # loaded once
        assert len(rt.store.embedded_clips(rec.id, emb.id)) == 300
        # resumable: only the clips without an embedding are embedded again
        with rt.store.engine.begin() as conn:
            conn.execute(text("DELETE FROM index_clip_embedding WHERE clip_id IN "
                              "(SELECT id FROM index_clip WHERE clip_no >= 280)"))  # fmt: skip
        seen: list[int] = []
        orig = emb.embed_images
        emb.embed_images = lambda frames: seen.append(len(frames)) or orig(frames)  # type: ignore[method-assign]
        rt.index.ensure(vid)
        assert sum(seen) == 20 and len(rt.store.embedded_clips(rec.id, emb.id)) == 300
        # a phrase no caption names: the clips that look most like it, by cosine
        phrases = ["zebra", "violet hexagon"]
        hits = rt.index.search(vid, ", ".join(phrases), 16)
        want = [
            h.id
            for v in emb.embed_texts(phrases)
            for h in rt.store.nearest_clips(rec.id, emb.id, v, 3)
        ]
        assert [h.id for h in hits] == list(dict.fromkeys(want)) and len(hits) >= 3
        # a phrase the captions name: those clips first, as without an embedder
        needle = next(o for o in world.objects if o.needle)
        by_text = rt.store.search_clips(rec.id, needle.name, 16)
        hits = rt.index.search(vid, needle.name, 16)
        assert by_text and [h.id for h in hits[: len(by_text)]] == [h.id for h in by_text]
        assert len(hits) <= min(16, len(by_text) + 3)
        # the frame a clip was captioned from finds that clip (or one showing the same)
        clip = rt.store.clips_between(rec.id, 100.0, 101.0)[0]
        frame = rt.reader.frames(video, clip.frames, size=settings.index.frame_size)
        top = rt.store.nearest_clips(rec.id, emb.id, emb.embed_images(frame)[0], 1)[0]
        assert top.score == pytest.approx(1.0, abs=1e-4)
        assert np.isclose(top.score, 1.0) and (top.id == clip.id or top.caption == clip.caption)


def test_search_selector_answers_a_needle_question_with_few_frames(
    long_world,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    world, video = long_world
    q = needle_questions(world)[0]
    settings = Settings(data_dir=tmp_path)
    settings.agents.strategy = "search"
    model = ScriptedChatModel(oracle([q], 0.0, 0, 16, world))
    with Client(settings, model=model) as client:
        ans = client.submit(video, q.text, q.options, q.answer).result(timeout=300)
        t = client.episode(ans.episode_id)
    assert ans.text == q.answer and ans.rewards["accuracy"] == 1.0
    selector = [s for s in t.steps if s.role == "selector"]
    # the first round starts from a search for the options; the model inspects its results
    assert selector[0].parsed["tool"] == "inspect"  # type: ignore[index]
    assert f"search {', '.join(q.options)!r}:" in selector[0].prompt
    # so that search is not offered again (the index would give the same moments)
    again = json.dumps({"tool": "search", "query": ", ".join(q.options)})
    asked = [r for r in model.calls if any('"tool"' in p for p in r.sampling.prefixes)]
    assert asked and all(again not in r.sampling.prefixes for r in asked)
    assert t.episode.frames_used <= 8
    reasoner = next(s for s in t.steps if s.role == "reasoner")
    found = reasoner.prompt.split("Found in the index:\n", 1)[1].split("Question:")[0]
    assert found.startswith(f"{q.answer}: ")  # the needle's option is found, listed first
    a, b = q.answer_span  # type: ignore[misc]
    shown = [i / 4 for _, i in reasoner.frames]
    assert any(a <= s <= b for s in shown)  # the needle was in front of the reasoner
    # each frame shown comes with the caption of the clip holding it, naming the needle
    captions = found.split("Captions at these frames:\n", 1)[1].strip().splitlines()
    assert len(captions) == len(shown)
    for line, s in zip(captions, shown, strict=True):
        assert parse_time(line.split(" ", 1)[0]) == pytest.approx(s, abs=0.05)
    assert any(q.answer in line for line in captions)
    # with agents.find_tool the selector's replies hold find: one call searches the needle
    # and inspects what it found (the index built above is reused)
    settings.agents.find_tool = True
    base = oracle([q], 0.0, 0, 16, world)

    def finder(req: ChatRequest) -> str:
        if any('"find"' in p for p in req.sampling.prefixes):
            return f'{{"tool": "find", "query": "{q.answer}"}}'
        return base(req)

    model = ScriptedChatModel(finder)
    with Client(settings, model=model) as client:
        ans = client.submit(video, q.text, q.options, q.answer).result(timeout=300)
        t = client.episode(ans.episode_id)
        assert ans.text == q.answer
        assert [s.parsed["tool"] for s in t.steps if s.role == "selector"] == ["find"]  # type: ignore[index]
        shown = [i / 4 for _, i in next(s for s in t.steps if s.role == "reasoner").frames]
        assert any(a <= s <= b for s in shown)
        # agents.selector_explore_tools reaches sampled rollouts' selector turns only: at 1
        # each turn chooses among one kind of call
        client.settings.agents.selector_explore_tools = 1.0
        asked = [r for r in model.calls if any('"tool"' in p for p in r.sampling.prefixes)]
        assert asked and all(len({call_kind(p) for p in r.sampling.prefixes}) > 1
                             for r in asked)  # fmt: skip
        model.calls.clear()
        client.submit(video, q.text, q.options, q.answer, rollouts=2).result(timeout=300)
        asked = [r for r in model.calls if any('"tool"' in p for p in r.sampling.prefixes)]
        assert asked and all(len({call_kind(p) for p in r.sampling.prefixes}) == 1
                             for r in asked)  # fmt: skip
        # agents.repeat_searches: a query already searched is offered again
        client.settings.agents.repeat_searches = True
        model.calls.clear()
        client.submit(video, q.text, q.options, q.answer).result(timeout=300)
        asked = [r for r in model.calls if any('"tool"' in p for p in r.sampling.prefixes)]
        assert asked and again in asked[0].sampling.prefixes


def test_cli_index_then_search_prints_what_the_selector_reads(tmp_path: Path) -> None:
    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=12))
    video = render_world(world, tmp_path / "w.mp4", gop_s=4)
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path / "home"), "OMP_NUM_THREADS": "2"}

    def vidra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vidra", "index", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip

    assert vidra(str(video)).returncode == 0  # built with vidra-tiny's captioner
    name = world.objects[0].name
    out = vidra("search", str(video), f"{name}, white star")
    assert out.returncode == 0, out.stderr[-2000:]
    settings = Settings(data_dir=tmp_path / "home")
    with Runtime(settings, executor_ok=False) as rt:
        vid = jobs.register_video(rt, video)
        [rec] = rt.store.indexes()
        hits = rt.index.search(vid, f"{name}, white star", SEARCH_K)
    assert rec.status == "done" and rec.clips_done == 30  # the search did not rebuild it
    # first the findings, one line per alternative, as the selector reads them
    expected = render_findings(find_moments(f"{name}, white star", hits)).splitlines()
    lines = out.stdout.splitlines()
    assert lines[:2] == expected and {x.split(":")[0] for x in expected} == {name, "white star"}
    if hits:  # then the best clips with their captions
        assert lines[2].startswith("best ")
    bad = vidra("search", str(video))
    assert bad.returncode == 2 and "needs a video and a text" in bad.stderr
    # with an image-text embedder configured, the built index is embedded too (not recaptioned)
    from tests.tiny_clip import build_tiny_clip

    env["VIDRA_INDEX__EMBEDDER"] = str(build_tiny_clip(tmp_path / "tiny-clip"))
    out = vidra(str(video))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done index" in out.stdout and "; 30 clips embedded by tiny-clip-" in out.stdout
    env["VIDRA_INDEX__EMBEDDER"] = str(tmp_path / "no-such-model")
    bad = vidra(str(video))
    assert bad.returncode != 0 and "index.embedder" in bad.stderr and "Traceback" not in bad.stderr
