"""The ``hf`` backend: transformers ``AutoModelForImageTextToText`` + the stock ``AutoProcessor``.

Loads a hub id or a local path through the same code (safetensors only; remote code only
when asked), batches requests per adapter, suppresses vision placeholder tokens while
sampling, and returns the logprob of each sampled token under the processed (temperature,
top-p) distribution; `score` recomputes those teacher-forced with the same processing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vidra.errors import ConfigError, InvalidInput, NotFound
from vidra.models.adapters import (
    LoraSpec,
    adapter_version,
    attach_adapter,
    load_adapter,
    touches_vision,
)
from vidra.models.protocol import ChatRequest, Completion, SamplingParams, chat_input

__all__ = ["HFChatModel"]

log = logging.getLogger(__name__)
_VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                  "<|video_pad|>")  # fmt: skip


class HFChatModel:
    """A Qwen2.5-VL-family model (or any image-text-to-text model) on CPU or GPU.

    Args:
        model: hub id or local directory.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``...).
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        max_frames: most frames one request may carry.
        max_pixels: per-frame pixel cap given to the processor (None: the processor's own).
        trust_remote_code: allow the checkpoint's own code (off unless you ask).
        adapters: role name -> adapter directory, loaded at start.
    """

    name = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_frames: int = 64,
        max_pixels: int | None = None,
        trust_remote_code: bool = False,
        adapters: dict[str, str | Path] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} but CUDA is not available; use device='cpu'")
        self.source = str(model)
        self.device = device
        self.max_frames = max_frames
        try:
            self.processor = AutoProcessor.from_pretrained(
                self.source, trust_remote_code=trust_remote_code
            )
            base: Any = AutoModelForImageTextToText.from_pretrained(
                self.source,
                dtype=getattr(torch, dtype),
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
            )
        except OSError as exc:
            raise NotFound(
                f"cannot load model {self.source!r} ({exc}); give a local directory with "
                "config.json and *.safetensors, or a hub id reachable from this machine"
            ) from exc
        if max_pixels is not None:
            import dataclasses

            for proc in (self.processor.image_processor, self.processor.video_processor):
                low = min(proc.size.shortest_edge or max_pixels, max_pixels)
                proc.size = dataclasses.replace(
                    proc.size, longest_edge=max_pixels, shortest_edge=low
                )
        self.model: Any = base.to(device).eval()
        tok = self.processor.tokenizer
        self.tokenizer = tok
        self.suppress = [
            i
            for i in tok.convert_tokens_to_ids(list(_VISION_TOKENS))
            if i is not None and i != tok.unk_token_id
        ]
        self.eos_id = (
            tok.convert_tokens_to_ids("<|im_end|>")
            if "<|im_end|>" in tok.get_vocab()
            else tok.eos_token_id
        )
        self.context = int(getattr(base.config.get_text_config(), "max_position_embeddings", 32768))
        self._versions: dict[str, str] = {}
        self._lock = threading.RLock()  # adapters are global model state: one call at a time
        for role, path in (adapters or {}).items():
            self.load_adapter(role, path)

    # adapters -------------------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        return sorted(getattr(self.model, "peft_config", {}) or {})

    def add_adapter(self, role: str, spec: LoraSpec | None = None) -> str:
        """Create a fresh adapter for ``role``; returns its version."""
        self.model = attach_adapter(self.model, role, spec).eval()
        return self._refresh_version(role)

    def load_adapter(self, role: str, path: str | Path) -> str:
        """Load ``role``'s adapter from ``path``; returns its version."""
        self.model = load_adapter(self.model, role, path).to(self.device).eval()
        return self._refresh_version(role)

    def _refresh_version(self, role: str) -> str:
        self._versions[role] = adapter_version(self.model, role)
        return self._versions[role]

    def adapter_versions(self) -> dict[str, str]:
        """Current version of every adapter (recomputed: adapters change while training)."""
        return {role: self._refresh_version(role) for role in self.adapters}

    def _use(self, adapter: str | None) -> Any:
        """A context manager under which the model runs with ``adapter`` (None: base)."""
        import contextlib

        if adapter is None:
            if hasattr(self.model, "disable_adapter"):
                return self.model.disable_adapter()
            return contextlib.nullcontext()
        self.model.set_adapter(self._known(adapter))
        return contextlib.nullcontext()

    def _known(self, adapter: str) -> str:
        if adapter not in self.adapters:
            raise NotFound(
                f"unknown adapter {adapter!r}; loaded adapters: {self.adapters or 'none'}"
            )
        return adapter

    # inputs ---------------------------------------------------------------------------------

    def _inputs(self, requests: Sequence[ChatRequest]) -> Any:
        """Tokenised, left-padded model inputs for a batch of requests (frames included)."""
        from transformers.video_utils import VideoMetadata

        texts: list[str] = []
        images: list[np.ndarray] = []
        videos: list[np.ndarray] = []
        metas: list[Any] = []
        for req in requests:
            split = chat_input(req.messages, self.max_frames)
            images += split.images
            for part in split.videos:
                n = len(part.times)
                videos.append(part.frames)
                metas.append(
                    VideoMetadata(
                        total_num_frames=n, fps=part.sampled_fps, frames_indices=list(range(n))
                    )
                )
            chat = split.chat
            texts.append(
                self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
            )
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        if videos:
            kwargs["videos"] = videos
            kwargs["videos_kwargs"] = {"video_metadata": metas, "do_sample_frames": False}
        self.tokenizer.padding_side = "left"
        inputs = self.processor(**kwargs).to(self.device)
        self._check_context(inputs["input_ids"].shape[1], requests)
        return inputs

    def _check_context(self, prompt_len: int, requests: Sequence[ChatRequest]) -> None:
        longest = max(r.sampling.max_tokens for r in requests)
        if prompt_len + longest > self.context:
            raise InvalidInput(
                f"prompt of {prompt_len} tokens + max_tokens {longest} exceeds the model's "
                f"context of {self.context}; lower the number of frames, the frame pixel cap "
                "(max_pixels) or max_tokens"
            )

    # generate and score ---------------------------------------------------------------------

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """``n`` completions per request, in request order."""
        if not requests:
            return []
        with self._lock:
            return self._generate(requests)

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out: dict[int, list[Completion]] = {}
        for idx in _batches(requests, self._mixes_adapters()):
            done = self._generate_group([requests[i] for i in idx])
            for i, comps in zip(idx, done, strict=True):
                out[i] = [Completion(**{**c.__dict__, "request_index": i}) for c in comps]
        return [c for i in range(len(requests)) for c in out[i]]

    def _generate_group(self, batch: Sequence[ChatRequest]) -> list[list[Completion]]:
        """``sampling.n`` completions per request of requests sharing their sampling, in one
        ``generate`` call: every sample is a row; a prefixed request's rows begin with the
        prefixes `_prefix_picks` chose and continue within the budget left."""
        plain = batch[0].sampling.model_copy(update={"prefixes": [], "n": 1})
        picks = self._prefix_picks(batch, plain)
        rows: list[ChatRequest] = []
        forced: list[tuple[list[int], list[float]]] = []
        budgets: list[int] = []
        owners: list[tuple[int, int]] = []
        for b, req in enumerate(batch):
            for j in range(req.sampling.n):
                pre = picks[b][j] if b in picks else ([], [])
                rows.append(ChatRequest(req.messages, req.adapter, plain))
                forced.append(pre)
                budgets.append(max(1, req.sampling.max_tokens - len(pre[0])))
                owners.append((b, j))
        out: list[list[Completion]] = [[] for _ in batch]
        done = self._generate_rows(rows, forced, budgets)
        for (b, j), comp in zip(owners, done, strict=True):
            out[b].append(Completion(**{**comp.__dict__, "sample_index": j}))
        return out

    def _mixes_adapters(self) -> bool:
        """Whether one ``generate`` call may run rows under different adapters (peft's
        mixed-batch LoRA inference: not while training, not with whole modules trained
        alongside (``train_norm``: peft cannot mix those), and not with an adapter on the
        vision tower, which runs over every row's frame patches at once, not row by row)."""
        configs: dict[str, Any] = getattr(self.model, "peft_config", None) or {}
        return (
            bool(configs)
            and not self.model.training
            and not any(getattr(c, "modules_to_save", None) for c in configs.values())
            and not any(touches_vision(c) for c in configs.values())
        )

    def _adapters(self, adapters: Sequence[str | None]) -> tuple[Any, dict[str, Any]]:
        """The context and ``generate`` arguments running row ``b`` under ``adapters[b]``:
        one adapter switched on, or peft's per-row adapter names."""
        import contextlib

        if len(set(adapters)) == 1:
            return self._use(adapters[0]), {}
        names = [self._known(a) if a is not None else "__base__" for a in adapters]
        return contextlib.nullcontext(), {"adapter_names": names}

    def _generate_rows(
        self,
        rows: list[ChatRequest],
        forced: Sequence[tuple[list[int], list[float]]],
        budgets: Sequence[int],
    ) -> list[Completion]:
        """One completion per row, in one ``generate`` call. Rows share their sampling
        (``n`` = 1) and may differ in adapter and token budget: the call decodes the longest
        budget and row ``b`` keeps its first ``budgets[b]`` tokens, which are those it would
        have got alone; row ``b`` first forced to begin with ``forced[b]`` (token ids and
        their logprobs)."""
        import torch

        s = rows[0].sampling.model_copy(update={"max_tokens": max(budgets)})
        inputs = self._inputs(rows)
        pad = inputs["attention_mask"].sum(dim=1).tolist()  # prompt tokens, before any prefix
        if any(ids for ids, _ in forced):  # forced first tokens, appended to each row's prompt
            inputs = _extend_rows(inputs, [ids for ids, _ in forced], self.eos_id)
        prompt_len = int(inputs["input_ids"].shape[1])
        kwargs = _generation_kwargs(s, self.suppress, self.eos_id, self.tokenizer)
        if s.seed is not None:
            torch.manual_seed(s.seed)
        adapters = [r.adapter for r in rows]
        scope, names = self._adapters(adapters)
        t0 = time.perf_counter()
        with torch.no_grad(), scope:
            gen = self.model.generate(**inputs, **kwargs, **names)
        latency = time.perf_counter() - t0
        seqs = gen.sequences[:, prompt_len:]
        scores = torch.stack(gen.scores, dim=1).float()  # [rows, T, vocab]
        logps = torch.log_softmax(scores, dim=-1).gather(-1, seqs[..., None])[..., 0]
        results: list[Completion] = []
        for b in range(len(rows)):
            ids, lps, reason = _trim(
                seqs[b, : budgets[b]].tolist(), logps[b, : budgets[b]].tolist(),
                self.eos_id, self.tokenizer, s.stop,
            )  # fmt: skip
            ids, lps = forced[b][0] + ids, forced[b][1] + lps
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for stop in s.stop:
                if stop in text:
                    text = text[: text.index(stop)]
            adapter = adapters[b]
            results.append(
                Completion(
                    text=text,
                    token_ids=ids,
                    logprobs=lps,
                    finish_reason=reason,
                    prompt_tokens=int(pad[b]),
                    completion_tokens=len(ids),
                    latency_s=latency,
                    adapter=adapter,
                    adapter_version=self._versions.get(adapter, "base") if adapter else "base",
                )
            )
        return results

    def _pick_prefix(self, req: ChatRequest, lps: Sequence[Any]) -> list[int]:
        """``n`` prefix picks for ``req`` from each prefix's total logprob (processed as when
        sampled: argmax when greedy, else sampled from their renormalised probabilities at
        ``prefix_temperature``)."""
        import torch

        s = req.sampling
        totals = torch.stack([lp.sum() for lp in lps]).double()
        if s.temperature > 0 and bool(torch.isfinite(totals).any()):
            gen = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
            probs = torch.softmax(totals / s.prefix_temperature, dim=0)
            return [int(x) for x in torch.multinomial(probs, s.n, replacement=True, generator=gen)]
        return [int(torch.argmax(totals))] * s.n

    def _prefix_picks(
        self, batch: Sequence[ChatRequest], plain: SamplingParams
    ) -> dict[int, list[tuple[list[int], list[float]]]]:
        """For each prefixed request ``b`` of ``batch``, ``sampling.n`` picks of one of its
        ``sampling.prefixes`` (token ids, and their logprobs under the unconstrained sampling
        distribution), chosen by `_pick_prefix`. The probes of all prefixes of the requests
        under one adapter run as one forward pass."""
        import torch

        members: dict[str | None, list[int]] = {}
        for b, r in enumerate(batch):
            if r.sampling.prefixes:
                members.setdefault(r.adapter, []).append(b)
        picks: dict[int, list[tuple[list[int], list[float]]]] = {}
        for adapter, group in members.items():
            encoded = {
                b: [self.tokenizer.encode(p, add_special_tokens=False)
                    for p in batch[b].sampling.prefixes]
                for b in group
            }  # fmt: skip
            probes = [ChatRequest(batch[b].messages, adapter, plain) for b in group
                      for _ in encoded[b]]  # fmt: skip
            with torch.no_grad():
                flat = self.batch_token_logprobs(probes, [ids for b in group for ids in encoded[b]])
            at = 0
            for b in group:
                lps = flat[at : at + len(encoded[b])]
                at += len(encoded[b])
                picks[b] = [(encoded[b][k], lps[k].tolist())
                            for k in self._pick_prefix(batch[b], lps)]  # fmt: skip
        return picks

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        """Teacher-forced logprobs of each completion's tokens, processed as when sampled."""
        if len(requests) != len(completions):
            raise InvalidInput(f"{len(requests)} requests but {len(completions)} completions")
        with self._lock:
            return self._score(requests, completions)

    def _score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        return [
            self.token_logprobs(req, comp.token_ids).tolist()
            for req, comp in zip(requests, completions, strict=True)
        ]

    def token_logprobs(self, req: ChatRequest, token_ids: Sequence[int], grad: bool = False) -> Any:
        """Teacher-forced logprobs ``[T]`` of ``token_ids`` after ``req``'s prompt, processed as
        when sampled, under ``req.adapter`` (None: the base model, adapters off).
        With ``grad=True`` the result carries gradients to the active adapter (training)."""
        return self.batch_token_logprobs([req], [token_ids], grad)[0]

    def batch_token_logprobs(
        self,
        requests: Sequence[ChatRequest],
        token_ids: Sequence[Sequence[int]],
        grad: bool = False,
    ) -> list[Any]:
        """`token_logprobs` for many (request, completion) pairs in one forward pass.

        All requests must use the same adapter and sampling. Prompts are left-padded and
        completions right-padded; returns one ``[T_i]`` tensor per pair.
        """
        import torch

        if len(requests) != len(token_ids):
            raise InvalidInput(f"{len(requests)} requests but {len(token_ids)} completions")
        if not requests:
            return []
        first = requests[0]
        if any(r.adapter != first.adapter or r.sampling != first.sampling for r in requests):
            raise InvalidInput("batch_token_logprobs: all requests need one adapter and sampling")
        inputs = self._inputs(requests)
        width = max(1, max(len(t) for t in token_ids))
        # right padding with the end token (masked out; a pad id may be a vision token)
        ids = torch.full((len(requests), width), self.eos_id, device=self.device)
        mask = torch.zeros_like(ids)
        for row, toks in enumerate(token_ids):
            ids[row, : len(toks)] = torch.tensor(list(toks), device=self.device)
            mask[row, : len(toks)] = 1
        prompt_len = inputs["input_ids"].shape[1]
        full = _extend(inputs, ids, mask)
        with torch.set_grad_enabled(grad), self._use(first.adapter):
            logits = self.model(**full).logits[:, prompt_len - 1 : prompt_len - 1 + width]
            b, t, v = logits.shape
            scores = process_logits(logits.float().reshape(b * t, v), first.sampling, self.suppress)
            lps = torch.log_softmax(scores, dim=-1).reshape(b, t, v)
            lps = lps.gather(-1, ids[..., None])[..., 0]
        return [lps[row, : len(toks)] for row, toks in enumerate(token_ids)]


def process_logits(logits: Any, s: SamplingParams, suppress: list[int]) -> Any:
    """What sampling does to next-token logits ``[T, vocab]``: suppression, temperature, top-p."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    scores = logits.clone()
    scores[:, suppress] = -float("inf")
    if s.temperature > 0:
        scores = TemperatureLogitsWarper(s.temperature)(None, scores)
        if s.top_p < 1.0:
            scores = TopPLogitsWarper(s.top_p)(None, scores)
    return scores


def _generation_kwargs(
    s: SamplingParams, suppress: list[int], eos: int, tok: Any
) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "max_new_tokens": s.max_tokens,
        "num_return_sequences": s.n,
        "suppress_tokens": suppress,
        "output_scores": True,
        "return_dict_in_generate": True,
        "eos_token_id": eos,
        "pad_token_id": tok.pad_token_id,
    }
    if s.temperature > 0:  # top_k=0: no top-k cut, so logprobs match `process_logits`
        kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
    else:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if s.stop:
        kw.update(stop_strings=list(s.stop), tokenizer=tok)
    return kw


def _trim(
    ids: list[int], lps: list[float], eos: int, tok: Any, stops: Sequence[str]
) -> tuple[list[int], list[float], Literal["stop", "length"]]:
    """Cut a generated row after its end token (kept: the model learns to stop)."""
    for k, t in enumerate(ids):
        if t == eos:
            return ids[: k + 1], lps[: k + 1], "stop"
        if t == tok.pad_token_id and tok.pad_token_id != eos:
            return ids[:k], lps[:k], "stop"
    text = tok.decode(ids, skip_special_tokens=True)
    return ids, lps, "stop" if any(st in text for st in stops) else "length"


def _extend(inputs: Any, ids: Any, mask: Any = None) -> Any:
    """Model inputs with text tokens ``ids`` ``[rows, w]`` appended (``mask``: which of them
    are attended; default all). A list of ids is appended to every row."""
    import torch

    if not isinstance(ids, torch.Tensor):
        rows = inputs["input_ids"].shape[0]
        ids = torch.tensor([list(ids)] * rows, device=inputs["input_ids"].device)
    mask = torch.ones_like(ids) if mask is None else mask
    out = dict(inputs)
    out["input_ids"] = torch.cat([inputs["input_ids"], ids], dim=1)
    out["attention_mask"] = torch.cat([inputs["attention_mask"], mask], dim=1)
    if "mm_token_type_ids" in out:
        out["mm_token_type_ids"] = torch.cat(
            [inputs["mm_token_type_ids"], torch.zeros_like(ids)], dim=1
        )
    return out


def _extend_rows(inputs: Any, rows: Sequence[Sequence[int]], pad_id: int) -> Any:
    """Model inputs with row ``b``'s text tokens ``rows[b]`` appended after its prompt, the
    batch left-padded again (rows may get prefixes of different lengths)."""
    import torch

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    mm = inputs.get("mm_token_type_ids")
    keep = [mask[b].bool() for b in range(ids.shape[0])]
    seqs = [ids[b][keep[b]].tolist() + list(rows[b]) for b in range(ids.shape[0])]
    width = max(len(x) for x in seqs)
    new_ids = torch.full((len(seqs), width), pad_id, dtype=ids.dtype, device=ids.device)
    new_mask = torch.zeros((len(seqs), width), dtype=mask.dtype, device=mask.device)
    new_mm = None if mm is None else torch.zeros_like(new_ids, dtype=mm.dtype)
    for b, seq in enumerate(seqs):
        new_ids[b, width - len(seq) :] = torch.tensor(seq, dtype=ids.dtype)
        new_mask[b, width - len(seq) :] = 1
        if new_mm is not None and mm is not None:
            head = mm[b][keep[b]]
            new_mm[b, width - len(seq) : width - len(seq) + head.shape[0]] = head
    out = dict(inputs)
    out["input_ids"], out["attention_mask"] = new_ids, new_mask
    if new_mm is not None:
        out["mm_token_type_ids"] = new_mm
    return out


def _batches(requests: Sequence[ChatRequest], mix_adapters: bool = False) -> list[list[int]]:
    """Requests that can share one ``generate`` call: same temperature, top-p and stop
    strings (budgets, sample counts and prefixes may differ) and adapter (unless
    ``mix_adapters``), and no seed (a seeded request is generated on its own, so its
    sample depends on its seed alone)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, r in enumerate(requests):
        s = r.sampling
        key = (
            "*" if mix_adapters else r.adapter,
            s.temperature,
            s.top_p,
            tuple(s.stop),
            None if s.seed is None else (s.seed, i),
        )
        groups.setdefault(key, []).append(i)
    return list(groups.values())
