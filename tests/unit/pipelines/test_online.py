"""Online retraining: the staleness bound (which adapter versions a step may come from) and
a cycle with the recipe asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.rl.helpers import quick_gate
from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import allowed_versions
from vidra.storage import TrajectoryStore

URI = "sqlite:///mlflow.db"


def _promoted(store: TrajectoryStore, version: str, adapter: str) -> None:
    run = store.create_training_run("grpo", {}, [])
    store.record_model_version(
        "reasoner", "vidra-reasoner", version, f"mlflow-{version}",
        {"adapter_version": adapter}, tracking_uri=URI,
    )  # fmt: skip
    store.finish_training_run(run.id, "done")
    store.set_promotion(run.id, "pending", versions={"reasoner": version})
    store.promote(run.id, {"reasoner": ("vidra-reasoner", version)}, URI)


def test_the_base_model_is_allowed_until_enough_champions_replace_it() -> None:
    with TrajectoryStore(settings=Settings()) as store:
        assert allowed_versions(store, URI, ["reasoner"], 1) == {"reasoner": {"base"}}
        _promoted(store, "1", "reasoner@a")
        assert allowed_versions(store, URI, ["reasoner"], 1) == {"reasoner": {"reasoner@a", "base"}}
        _promoted(store, "2", "reasoner@b")
        assert allowed_versions(store, URI, ["reasoner"], 1) == {
            "reasoner": {"reasoner@a", "reasoner@b"}
        }
        assert allowed_versions(store, URI, ["reasoner"], 0) == {"reasoner": {"reasoner@b"}}
        assert "base" in allowed_versions(store, URI, ["reasoner"], 2)["reasoner"]


def test_an_online_cycle_trains_with_the_recipe_asked(tmp_path: Path) -> None:
    """``online(..., algo="sft+grpo")``: vidra-tiny answers a fresh world's questions with
    G=2 rollouts, then one cycle fits SFT on the best episodes and GRPO from those adapters
    (two stages on disk, one training run); a recipe online cycles cannot run is refused
    before any question is asked."""
    from vidra.models import resolve_model_path
    from vidra.pipelines.online import online
    from vidra.pipelines.train_tiny import tiny_agent_settings

    settings = tiny_agent_settings(Settings(data_dir=tmp_path))
    settings.model.path = resolve_model_path("vidra-tiny")
    settings.agents.seed = 0  # the rollouts sample alike in every run
    quick_gate(settings)
    with pytest.raises(InvalidInput, match="grpo, sft or sft\\+grpo, not 'dpo'"):
        online(settings, 1, questions=4, rollouts=2, algo="dpo")
    assert not (tmp_path / "online").exists()

    report = online(settings, 1, questions=8, rollouts=2, seed=5, algo="sft+grpo")
    res = report.results[0]
    assert report.asked == [8]
    assert res.algorithm == "sft+grpo" and res.samples > 0
    with TrajectoryStore(settings=settings) as store:
        runs = store.training_runs("done")
        assert [r.algorithm for r in runs] == ["sft+grpo"]
        assert sum(1 for _ in store.iter_trajectories()) == 16  # 8 questions x 2 rollouts
    stages = sorted(p.name for p in (tmp_path / "adapters" / runs[0].id).iterdir())
    assert stages == ["0-sft", "1-grpo"]


def test_a_cycle_draws_balanced_questions_from_as_many_fresh_worlds_as_it_needs(
    tmp_path: Path,
) -> None:
    """A cycle asking 70 questions takes at most 3 of each kind from a fresh 5-minute world
    and renders as many worlds as that needs (each world once, no question twice), so its
    kinds are as balanced as the benchmark's: not mostly the ordering and state questions a
    world holds dozens of."""
    from collections import Counter

    from vidra.pipelines.online import _pick
    from vidra.video.synthetic import KINDS

    picked = _pick(Settings(data_dir=tmp_path), 0, 70, seed=5, curriculum=False)
    videos = [v for v, _ in picked]
    assert len(picked) == 70
    assert len(set(videos)) >= 5 and max(Counter(videos).values()) <= 3 * len(KINDS)
    assert len({(v, q.text, tuple(q.options)) for v, q in picked}) == 70
    kinds = Counter(q.kind for _, q in picked)
    assert set(kinds) == set(KINDS) and max(kinds.values()) <= 0.25 * 70, kinds


def test_the_curriculum_asks_the_pool_questions_with_mixed_pass_rates_first(
    tmp_path: Path,
) -> None:
    """With ``curriculum`` a cycle asks the pool's questions by their recorded pass rates,
    ``p (1 - p)`` highest first: those right half of the time and those not yet tried (in
    the pool's order), then one right two times in three, then one always right and one
    never right."""
    from tests.unit.storage.helpers import video_in
    from vidra.pipelines.online import _pick, _pool
    from vidra.storage import EpisodeIn, JobCreate
    from vidra.video import content_hash

    settings = Settings(data_dir=tmp_path)
    pool = _pool(settings, seed=3, worlds=4)
    assert len(pool) > 20
    first = _pick(settings, 0, len(pool), seed=3, curriculum=True)
    assert first == pool  # nothing recorded: the pool's order
    solved, hopeless, half, most = pool[0], pool[1], pool[7], pool[9]
    with TrajectoryStore(settings=settings) as store:
        recorded = [(solved, [1, 1]), (hopeless, [0, 0, 0]), (half, [1, 0]), (most, [1, 0, 1])]
        for (video, q), scores in recorded:
            # the question's key: the video's content hash, the question and its options
            vid = store.register_video(video_in(video.stem, content_hash(video))).id
            job = store.create_job(JobCreate(video_id=vid, question=q.text, options=q.options,
                                             answer=q.answer, rollouts=len(scores))).id  # fmt: skip
            for k, acc in enumerate(scores):
                rewards = [{"name": "accuracy", "value": acc}]
                store.record_episode(EpisodeIn(job_id=job, rollout_index=k, answer="a", steps=[],
                                               rewards=rewards))  # fmt: skip
    picked = _pick(settings, 0, len(pool), seed=3, curriculum=True)
    assert [pool.index(x) for x in picked] == [*range(2, 9), *range(10, len(pool)), 9, 0, 1]
    assert _pick(settings, 0, 3, seed=3, curriculum=True) == pool[2:5]


@pytest.mark.parametrize("seed", [0, 41])
def test_fresh_worlds_are_fresh_across_iterations(seed: int) -> None:
    """No world of one iteration is a world of another (``vidra retrain --online`` runs at
    seed 0, where the extra worlds once took the next iterations' first seeds)."""
    from vidra.pipelines.online import _fresh_seed

    seeds = [_fresh_seed(seed, it, w) for it in range(5) for w in range(40)]
    assert len(set(seeds)) == len(seeds)
    assert _fresh_seed(seed, 3, 0) == seed * 1000 + 3  # first worlds keep their seeds


def test_variants_trained_from_one_collection_learn_from_the_same_episodes(
    tmp_path: Path,
) -> None:
    """The ablation's shape: `collect` answers fresh questions G times without training,
    with their evidence spans (so tool calls earn their per-step credit); two trainings of
    different roles from that one collection (``since_run="all"``, ``train.promote=never``)
    read the same episodes, and the champions stay where they were."""
    from vidra.models import resolve_model_path
    from vidra.pipelines.online import collect
    from vidra.pipelines.retrain import retrain, reward_spec
    from vidra.pipelines.train_tiny import tiny_agent_settings
    from vidra.rl.datasets import build_sft

    settings = tiny_agent_settings(Settings(data_dir=tmp_path))
    settings.model.path = resolve_model_path("vidra-tiny")
    settings.agents.seed = 0  # the rollouts sample alike in every run
    quick_gate(settings)
    settings.train.promote = "never"
    with pytest.raises(InvalidInput, match="questions >= 1, rollouts >= 1"):
        collect(settings, 4, rollouts=0)

    assert collect(settings, 6, rollouts=2, seed=5) == 6
    with TrajectoryStore(settings=settings) as store:
        collected = list(store.iter_trajectories())
        assert len(collected) == 12 and not store.training_runs()
    # the questions' evidence spans went with the jobs: tool calls carry per-step credit
    credit = [r for t in collected for r in t.rewards if r.name == "evidence_credit"]
    assert credit and all(r.step_order is not None for r in credit)
    assert any(r.value == 1.0 for r in credit)  # some tool call surfaced the evidence
    first = retrain(settings, "sft", ["reasoner"], since_run="all")
    second = retrain(settings, "sft", ["critic"], since_run="all")
    assert (first.roles, second.roles) == (["reasoner"], ["critic"])
    assert first.episodes == second.episodes > 0
    # the settings' rejection sampling: any reward, only each question's best rollouts
    best = settings.model_copy(deep=True)
    best.train.sft_min_reward, best.train.sft_best_of_group = -10.0, True
    with TrajectoryStore(settings=settings) as store:
        want = build_sft(store, reward_spec(best), ["critic"], threshold=-10.0, best_of_group=True)
    third = retrain(best, "sft", ["critic"], since_run="all")
    assert third.episodes == len(want.episode_ids) and 6 <= third.episodes < 12
    assert not first.promoted and not second.promoted
    with TrajectoryStore(settings=settings) as store:
        runs = store.training_runs("done")
        assert [r.n_episodes for r in runs] == [first.episodes] * 2 + [third.episodes]
        assert store.champions(settings.resolved_tracking_uri()) == {}
    # a second iteration's collection adds fresh worlds beside the first's, which stay intact
    first_videos = {p: p.read_bytes() for p in (tmp_path / "online" / "it0").glob("*.mp4")}
    assert collect(settings, 2, rollouts=1, seed=5, iteration=1) == 2
    assert {p: p.read_bytes() for p in (tmp_path / "online" / "it0").glob("*.mp4")} == first_videos
    assert list((tmp_path / "online" / "it1").glob("*.mp4"))
    with TrajectoryStore(settings=settings) as store:
        assert len(list(store.iter_trajectories())) == 12 + 2


def test_training_jobs_record_the_evidence_spans_an_evaluation_would() -> None:
    """A synthetic question's evidence as online cycles and the demo record it equals what
    the evaluation harness records for the same question: the grounding answer span, else a
    two-second window around each evidence time; nothing where there is none."""
    from vidra.evals.items import LoadRequest
    from vidra.evals.tasks.synthetic import _item, evidence_spans
    from vidra.pipelines.evaluate import _job_args
    from vidra.video.synthetic import Question

    req = LoadRequest("synthetic", None, None)
    grounding = Question("g", "grounding", "When?", ["0:10-0:20", "0:30-0:40"], "0:10-0:20", 0,
                         answer_span=(10.0, 20.0))  # fmt: skip
    needle = Question("n", "needle", "What?", ["a", "b"], "a", 0, evidence=[0.4, 61.26])
    none = Question("x", "state", "Which?", ["a", "b"], "b", 1)
    assert evidence_spans(grounding) == [(10.0, 20.0)]
    assert evidence_spans(needle) == [(0.0, 1.4), (60.3, 62.3)]
    assert evidence_spans(none) is None
    for q in (grounding, needle, none):
        assert _job_args(_item(req, q, Path("v.mp4")))["evidence"] == evidence_spans(q), q


def test_annotated_spans_end_first_or_before_zero_become_valid_evidence() -> None:
    """Annotations (NExT-GQA windows among them) hold spans written end first or reaching
    before 0 s; a job's evidence must be ordered and >= 0, so they are mended (or, wholly
    before 0 s, left out), not failed."""
    from vidra.evals.spans import evidence_windows

    spans = [(20.0, 10.0), (-2.0, 3.0), (-3.0, -1.0)]
    assert evidence_windows(spans, []) == [(10.0, 20.0), (0.0, 3.0)]
    assert evidence_windows([], [0.5]) == [(0.0, 1.5)]
    assert evidence_windows([], []) is None
