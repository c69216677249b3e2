"""Dynamic batching of concurrent callers on a real tiny Qwen2.5-VL: batched equals unbatched
at temperature 0 (token ids, logprobs), prefixed (constrained) requests batch too, and the
recorded logprobs still equal teacher-forced scores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from vidra.models import ChatRequest, ImagePart, Message, SamplingParams, TextPart
from vidra.models.hf import HFChatModel
from vidra.models.serving import BatchingChatModel

RNG = np.random.default_rng(3)
FRAMES = [RNG.integers(0, 255, (63 + 7 * k, 112, 3), dtype=np.uint8) for k in range(4)]
PREFIXES = [['{"answer": "red', '{"answer": "blue square', '{"answer": "a'],
            ['{"answer": "1', '{"answer": "22'], ['{"answer": "x', '{"answer": "y']]  # fmt: skip


def _requests() -> list[ChatRequest]:
    out = []
    for k, frame in enumerate(FRAMES):
        parts = [TextPart(f"t={k}.0s "), ImagePart(frame, float(k)), TextPart(f"question {k}?")]
        out.append(ChatRequest([Message("user", parts)], sampling=SamplingParams(max_tokens=10)))
    for k, pre in enumerate(PREFIXES):  # constrained replies, options of different lengths
        parts = [ImagePart(FRAMES[k], 1.0), TextPart("Which option?" * (k + 1))]
        out.append(ChatRequest([Message("user", parts)],
                               sampling=SamplingParams(max_tokens=14, prefixes=pre)))  # fmt: skip
    return out


@contextmanager
def _closed(batcher: BatchingChatModel) -> Iterator[BatchingChatModel]:
    """Closes ``batcher`` after the block. A batching thread left alive in this process (it
    ran torch ops, so it holds an OpenMP thread team) makes libgomp throttle its spin-waits
    for every team: the learning tests ran 1.7x slower after this module (41 s -> 70 s)."""
    try:
        yield batcher
    finally:
        batcher.close()


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> HFChatModel:
    return HFChatModel(tiny_model_path)


def test_batched_equals_unbatched_at_temperature_zero(model: HFChatModel) -> None:
    reqs = _requests()
    alone = [model.generate([r])[0] for r in reqs]
    batcher = BatchingChatModel(model, max_batch=16, max_wait_s=0.5)
    got: list[object] = [None] * len(reqs)

    def call(k: int) -> None:
        got[k] = batcher.generate([reqs[k]])[0]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    batcher.close()  # a batching thread left alive slows torch in this process: `_closed`
    assert max(batcher.stats.batch_sizes) > 1  # the callers really shared calls
    for a, b in zip(alone, got, strict=True):
        assert b is not None and b.token_ids == a.token_ids and b.text == a.text  # type: ignore[attr-defined]
        np.testing.assert_allclose(b.logprobs, a.logprobs, atol=2e-4)  # type: ignore[attr-defined]
        assert b.request_index == 0 and b.prompt_tokens == a.prompt_tokens  # type: ignore[attr-defined]
    scored = model.score(reqs, [g for g in got])  # type: ignore[misc]
    for g, s in zip(got, scored, strict=True):
        np.testing.assert_allclose(s, g.logprobs, atol=2e-4)  # type: ignore[attr-defined]


def test_one_call_of_many_requests_batches_prefixed_ones(model: HFChatModel) -> None:
    reqs = _requests()[len(FRAMES) :]
    together = model.generate(reqs)
    for r, c in zip(reqs, together, strict=True):
        text = model.tokenizer.decode(c.token_ids[: len(model.tokenizer.encode(
            r.sampling.prefixes[0], add_special_tokens=False))])  # fmt: skip
        assert any(c.text.startswith(p) for p in r.sampling.prefixes), (c.text, text)
    assert [c.token_ids for c in together] == [model.generate([r])[0].token_ids for r in reqs]


def test_an_error_reaches_every_caller_of_the_batch(model: HFChatModel) -> None:
    batcher = BatchingChatModel(model, max_batch=4, max_wait_s=0.01)
    bad = ChatRequest([Message("user", [TextPart("x")])], sampling=SamplingParams(max_tokens=32768))
    with _closed(batcher):
        with pytest.raises(Exception, match="context"):
            batcher.generate([bad])
        assert batcher.generate(_requests()[:1])[0].token_ids  # and it keeps serving


def test_a_saved_adapter_has_the_version_it_will_be_sampled_with(
    model: HFChatModel, tmp_path: Path
) -> None:
    """The version a registered adapter is known by equals the one its steps record, so
    the dataset builder can tell how many versions behind a step was sampled."""
    import torch

    from vidra.models.adapters import LoraSpec, adapter_file_version, save_adapter

    model.add_adapter("critic", LoraSpec(train_norm=True))
    with torch.no_grad():
        for n, p in model.model.named_parameters():
            if ".critic" in n:
                p.add_(0.01)
    live = model.adapter_versions()["critic"]
    save_adapter(model.model, "critic", tmp_path / "critic")
    assert adapter_file_version(tmp_path / "critic", "critic") == live
    loaded = HFChatModel(model.source, adapters={"critic": str(tmp_path / "critic")})
    assert loaded.adapter_versions()["critic"] == live


def test_requests_of_different_adapters_and_budgets_share_one_call(tiny_model_path: Path) -> None:
    """Concurrent episodes ask for different roles, budgets, sample counts and constrained
    replies: their rows run in one ``generate`` call (peft's mixed-adapter batch) and each
    gets what it would have got alone."""
    import torch

    from vidra.models.adapters import LoraSpec

    m = HFChatModel(tiny_model_path)
    for role in ("planner", "critic"):
        m.add_adapter(role, LoraSpec(rank=4))
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in m.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    plain = _requests()[: len(FRAMES)]
    adapters = ["planner", "critic", None, "planner"]
    reqs = [
        ChatRequest(r.messages, a, r.sampling.model_copy(update={"max_tokens": 6 + 3 * k}))
        for k, (r, a) in enumerate(zip(plain, adapters, strict=True))
    ]
    constrained = _requests()[len(FRAMES)]  # a prefixed request and a two-sample one join too
    reqs += [ChatRequest(constrained.messages, "critic", constrained.sampling),
             ChatRequest(plain[1].messages, None, SamplingParams(max_tokens=5, n=2))]  # fmt: skip
    alone = [m.generate([r])[0] for r in reqs]
    assert alone[0].token_ids != alone[2].token_ids  # the adapters really differ from the base
    calls: list[int] = []
    real = m.model.generate

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    m.model.generate = counted
    together = m.generate(reqs)
    assert len(calls) == 1 and len(together) == len(reqs) + 1
    alone.insert(len(reqs), m.generate([reqs[-1]])[1])
    reqs.append(reqs[-1])
    for a, b, r in zip(alone, together, reqs, strict=True):
        assert b.token_ids == a.token_ids and b.finish_reason == a.finish_reason
        assert len(b.token_ids) <= r.sampling.max_tokens
        assert b.adapter == r.adapter and b.adapter_version == a.adapter_version
        np.testing.assert_allclose(b.logprobs, a.logprobs, atol=2e-4)


def _batchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidra-batcher" and t.is_alive()]


def test_close_serves_what_was_queued_then_stops_its_thread(model: HFChatModel) -> None:
    """Its thread holds the wrapped model (the weights): `close` ends it, after answering the
    calls already waiting; a later call is refused saying why."""
    from vidra.errors import InvalidInput

    batcher = BatchingChatModel(model, max_batch=16, max_wait_s=0.5)
    got: list[object] = []
    caller = threading.Thread(target=lambda: got.append(batcher.generate(_requests()[:1])))
    caller.start()
    while batcher._queue.empty() and not got:  # the call is queued (or already served)
        pass
    batcher.close()
    caller.join(timeout=120)
    assert got and got[0][0].token_ids  # type: ignore[index]
    assert not batcher._thread.is_alive()
    with pytest.raises(InvalidInput, match="closed"):
        batcher.generate(_requests()[:1])
    batcher.close()  # twice is fine


def test_a_runtime_closes_the_batching_model_it_built(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """A runtime (each client, each gate evaluation of a retraining cycle) that built its own
    model leaves no batching thread, and so no model, behind; one it was given it leaves open."""
    from vidra.config import Settings
    from vidra.runtime import Runtime

    s = Settings(data_dir=tmp_path)
    s.model.path = str(tiny_model_path)
    s.serving.max_batch = 4
    before = set(_batchers())
    with Runtime(s, executor_ok=False) as rt:
        assert isinstance(rt.model, BatchingChatModel)
        assert len(set(_batchers()) - before) == 1
    assert not set(_batchers()) - before
    given = BatchingChatModel(HFChatModel(tiny_model_path), max_batch=4)
    with Runtime(s, model=given, executor_ok=False):
        pass
    assert given.generate(_requests()[:1])[0].token_ids
    given.close()
