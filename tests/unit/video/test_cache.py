"""The frame cache: a second request decodes nothing; byte budget; disk layer; threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from vidra.video import CachedReader, FrameCache, get_decoder
from vidra.video.synthetic import read_counter

from .conftest import Counter


def test_second_request_decodes_nothing(counter_gop: Counter) -> None:
    reader = CachedReader(get_decoder("pyav"), FrameCache(64 << 20))
    first = reader.frames(counter_gop.path, [10, 100, 200], size=64)
    calls = reader.stats.calls
    second = reader.frames(counter_gop.path, [200, 10, 100, 10], size=64)
    assert reader.stats.calls == calls  # no decode at all
    assert [read_counter(f, counter_gop.bits) for f in second] == [200, 10, 100, 10]
    np.testing.assert_array_equal(first[0], second[1])
    # a partial overlap decodes only the new frame
    reader.frames(counter_gop.path, [10, 150], size=64)
    assert reader.stats.frames_returned == 3 + 1
    # another size is another key
    reader.frames(counter_gop.path, [10], size=32)
    assert reader.stats.calls == calls + 2


def test_byte_budget_evicts_least_recently_used() -> None:
    cache = FrameCache(max_bytes=3 * 100)
    frames = [np.full((10, 10, 1), k, np.uint8) for k in range(4)]
    for k in range(3):
        cache.put(("v", k, (10, 10)), frames[k])
    assert cache.get(("v", 0, (10, 10))) is not None  # 0 is now most recent
    cache.put(("v", 3, (10, 10)), frames[3])
    assert cache.nbytes <= 300 and len(cache) == 3
    assert cache.get(("v", 1, (10, 10))) is None
    assert cache.get(("v", 0, (10, 10))) is not None


def test_disk_layer_survives_a_new_process_cache(tmp_path: Path, counter_gop: Counter) -> None:
    disk = tmp_path / "frames"
    CachedReader(get_decoder("pyav"), FrameCache(1 << 20, disk)).frames(counter_gop.path, [42])
    fresh = CachedReader(get_decoder("pyav"), FrameCache(1 << 20, disk))
    got = fresh.frames(counter_gop.path, [42])
    assert fresh.stats.calls == 0 and fresh.cache.disk_hits == 1
    assert read_counter(got[0], counter_gop.bits) == 42
    # a torn file on disk is dropped and decoded again, not an error
    for f in disk.rglob("*.npy"):
        f.write_bytes(b"garbage")
    again = CachedReader(get_decoder("pyav"), FrameCache(1 << 20, disk))
    assert read_counter(again.frames(counter_gop.path, [42])[0], counter_gop.bits) == 42
    assert again.stats.calls == 1


def test_concurrent_requests_decode_each_frame_once(counter_gop: Counter) -> None:
    reader = CachedReader(get_decoder("pyav"), FrameCache(64 << 20))
    indices = [5, 60, 120, 180, 240]
    results: list[list[int]] = []

    def work() -> None:
        frames = reader.frames(counter_gop.path, indices, size=64)
        results.append([read_counter(f, counter_gop.bits) for f in frames])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [indices] * 6
    assert reader.stats.frames_returned == len(indices)


def test_cached_frames_are_read_only(counter_gop: Counter) -> None:
    reader = CachedReader(get_decoder("pyav"), FrameCache(64 << 20))
    reader.frames(counter_gop.path, [1])
    frame = reader.cache.get((reader.probe(counter_gop.path).identity.key, 1, (128, 72)))
    assert frame is not None
    with pytest.raises(ValueError):
        frame[0, 0, 0] = 1
