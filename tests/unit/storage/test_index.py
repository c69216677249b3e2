"""The video index in the store, on SQLite (FTS5) and on a real PostgreSQL (tsvector + GIN):
one API, the same ranking rules, resumable building."""

from __future__ import annotations

import pytest

from vidra.storage import TrajectoryStore


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    s = TrajectoryStore(db_url)
    yield s
    s.close()


CLIPS = [
    (0, 0.0, 2.0, "red triangle top-left", [4]),
    (1, 2.0, 4.0, "red triangle top-left; blue square bottom-right", [12]),
    (2, 4.0, 6.0, "nothing", [20]),
    (3, 6.0, 8.0, "green circle top-right", [28]),
    (4, 8.0, 10.0, "blue circle bottom-left", [36]),
]


def test_open_add_resume_and_finish(store: TrajectoryStore) -> None:
    rec = store.open_index("hash-a", "key-1", {"stride": 2}, 2.0, len(CLIPS))
    assert rec.status == "building" and rec.clips_done == 0
    assert store.open_index("hash-a", "key-1", {}, 2.0, len(CLIPS)).id == rec.id  # found again
    assert store.add_clips(rec.id, CLIPS[:2]) == 2
    assert store.clip_numbers(rec.id) == {0, 1}
    assert store.add_clips(rec.id, CLIPS[1:]) == 5  # clip 1 again: kept once
    store.finish_index(rec.id, "done")
    done = store.get_index(rec.id)
    assert (done.status, done.clips_done, done.clips_total) == ("done", 5, 5)
    other = store.open_index("hash-a", "key-2", {}, 4.0, 3)  # another configuration
    assert other.id != rec.id and len(store.indexes("hash-a")) == 2


def test_full_text_search_ranks_by_matching_words(store: TrajectoryStore) -> None:
    rec = store.open_index("hash-b", "key", {}, 2.0, len(CLIPS))
    store.add_clips(rec.id, CLIPS)
    noise = store.open_index("hash-c", "key", {}, 2.0, 1)  # another video's index
    store.add_clips(noise.id, [(0, 0.0, 2.0, "red triangle top-left", [1])])
    hits = store.search_clips(rec.id, "blue triangle", k=8)
    assert {h.clip_no for h in hits} == {0, 1, 4}  # any word matches, only this index
    assert hits[0].clip_no == 1  # both words: ranked first
    assert hits[0].score > hits[-1].score
    assert [h.clip_no for h in store.search_clips(rec.id, "green", k=8)] == [3]
    assert store.search_clips(rec.id, "purple hexagon", k=8) == []
    assert store.search_clips(rec.id, "   ", k=8) == []
    assert store.search_clips(rec.id, "red: (triangle)* OR 'x'", k=8)  # syntax is not a query
    assert len(store.search_clips(rec.id, "red blue green", k=2)) == 2
    window = store.clips_between(rec.id, 3.0, 7.0)
    assert [c.clip_no for c in window] == [1, 2, 3] and window[0].frames == [12]
    assert [c.clip_no for c in store.clips([window[2].id, window[0].id])] == [1, 3]


def test_clip_embeddings_are_kept_once_and_searched_by_cosine(store: TrajectoryStore) -> None:
    import numpy as np

    rec = store.open_index("hash-e", "key", {}, 2.0, len(CLIPS))
    store.add_clips(rec.id, CLIPS)
    ids = [c.id for c in store.clips_between(rec.id, 0.0, 10.0)]
    assert store.embedded_clips(rec.id, "clip-a") == set()
    assert store.nearest_clips(rec.id, "clip-a", np.ones(3), k=3) == []  # none yet
    vectors = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 1], [1, 1, 0], [-1, 0, 0]], np.float32)
    assert store.add_embeddings(rec.id, "clip-a", ids[:2], vectors[:2]) == 2
    assert store.add_embeddings(rec.id, "clip-a", ids, vectors * 5) == 5  # first two kept
    assert store.embedded_clips(rec.id, "clip-a") == set(ids)
    hits = store.nearest_clips(rec.id, "clip-a", np.array([0.0, 3.0, 0.0]), k=3)
    assert [h.clip_no for h in hits] == [1, 3, 0]  # cosine: 1, 0.71, 0
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(0.5**0.5)
    assert hits[0].caption == CLIPS[1][3] and hits[0].frames == [12]
    assert store.nearest_clips(rec.id, "clip-a", np.array([-1.0, 0, 0]), k=1)[0].clip_no == 4
    assert store.nearest_clips(rec.id, "clip-b", np.ones(3), k=3) == []  # another embedder
    other = store.open_index("hash-f", "key", {}, 2.0, 1)  # another video's index
    store.add_clips(other.id, [(0, 0.0, 2.0, "x", [1])])
    (oid,) = [c.id for c in store.clips_between(other.id, 0.0, 2.0)]
    store.add_embeddings(other.id, "clip-a", [oid], np.array([[0.0, 1.0, 0.0]]))
    assert oid not in {h.id for h in store.nearest_clips(rec.id, "clip-a", np.eye(3)[1], k=9)}
    with pytest.raises(ValueError, match=r"has 4 dimensions but .* have 3"):
        store.nearest_clips(rec.id, "clip-a", np.ones(4), k=1)
    with pytest.raises(ValueError, match=r"2 clips need \[2, d\] vectors"):
        store.add_embeddings(rec.id, "clip-a", ids[:2], vectors[:3])
