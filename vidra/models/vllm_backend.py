"""The ``vllm`` backend (GPU): one ``vllm.LLM`` with multi-LoRA, one ``LoRARequest`` per role.

Imported only when asked for (extra ``gpu``). Logprobs are requested in vLLM's
``processed_logprobs`` mode, i.e. under the temperature/top-p distribution actually
sampled from, matching the ``hf`` backend's contract; `score` uses prompt logprobs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidra.errors import BackendUnavailable, ConfigError, NotFound
from vidra.models.adapters import touches_vision
from vidra.models.protocol import ChatRequest, Completion, chat_input

__all__ = ["VLLMChatModel"]


class VLLMChatModel:
    """Serve a Qwen2.5-VL-family checkpoint and its role adapters with vLLM."""

    name = "vllm"

    def __init__(
        self,
        model: str | Path,
        *,
        adapters: dict[str, str | Path] | None = None,
        max_lora_rank: int = 64,
        max_frames: int = 64,
        gpu_memory_utilization: float = 0.85,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        max_model_len: int | None = None,
    ) -> None:
        try:
            from transformers import AutoProcessor
            from vllm import LLM
        except ImportError as exc:
            raise BackendUnavailable("vllm", "gpu", str(exc)) from exc
        self.source = str(model)
        self.max_frames = max_frames
        self.processor = AutoProcessor.from_pretrained(
            self.source, trust_remote_code=trust_remote_code
        )
        engine: dict[str, Any] = dict(
            model=self.source,
            enable_lora=True,
            max_lora_rank=max_lora_rank,
            max_loras=max(1, len(adapters or {})),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            limit_mm_per_prompt={"image": max_frames, "video": 4},
            max_model_len=max_model_len,
            logprobs_mode="processed_logprobs",
        )
        # an adapter on the vision tower needs vLLM's tower LoRA, asked for only when one is
        # given: it costs memory, and older vLLM versions do not have it
        self.tower_lora = any(_touches_vision(p) for p in (adapters or {}).values())
        if self.tower_lora:
            engine["enable_tower_connector_lora"] = True
        try:
            self.llm = LLM(**engine)
        except TypeError as exc:
            if not self.tower_lora or "enable_tower_connector_lora" not in str(exc):
                raise
            raise BackendUnavailable(
                "vllm",
                "gpu",
                f"an adapter adapts the vision tower, and this vLLM has no tower LoRA: {exc}",
                "upgrade vLLM, or serve these adapters with the hf backend",
            ) from exc
        self._adapters: dict[str, tuple[int, str]] = {}
        for role, path in (adapters or {}).items():
            self.load_adapter(role, path)

    @property
    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def load_adapter(self, role: str, path: str | Path) -> str:
        p = Path(path)
        if not (p / "adapter_config.json").is_file():
            raise NotFound(f"no LoRA adapter at {p}; check the path")
        if _touches_vision(p) and not self.tower_lora:
            raise ConfigError(
                f"the adapter at {p} adapts the vision tower and this engine was started "
                "without vLLM's tower LoRA; start the backend with it among its adapters"
            )
        self._adapters[role] = (len(self._adapters) + 1, str(p))
        return f"{role}@{p.name}"

    def _lora(self, adapter: str | None) -> Any:
        from vllm.lora.request import LoRARequest

        if adapter is None:
            return None
        if adapter not in self._adapters:
            raise NotFound(f"unknown adapter {adapter!r}; loaded: {self.adapters or 'none'}")
        idx, path = self._adapters[adapter]
        return LoRARequest(adapter, idx, path)

    def _prompt(self, req: ChatRequest) -> dict[str, Any]:
        split = chat_input(req.messages, self.max_frames)
        chat, images = split.chat, split.images
        videos = [
            (
                v.frames,
                {
                    "fps": v.sampled_fps,
                    "total_num_frames": len(v.times),
                    "frames_indices": list(range(len(v.times))),
                    "do_sample_frames": False,
                },
            )
            for v in split.videos
        ]
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        mm: dict[str, Any] = {}
        if images:
            mm["image"] = images
        if videos:
            mm["video"] = videos
        return {"prompt": text, "multi_modal_data": mm} if mm else {"prompt": text}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        from vllm import SamplingParams

        prompts = [self._prompt(r) for r in requests]
        params = [
            SamplingParams(
                n=r.sampling.n,
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                max_tokens=r.sampling.max_tokens,
                seed=r.sampling.seed,
                stop=r.sampling.stop or None,
                logprobs=0,
                **_structured(r.sampling.prefixes),
            )
            for r in requests
        ]
        t0 = time.perf_counter()
        outs = self.llm.generate(
            prompts, params, lora_request=[self._lora(r.adapter) for r in requests], use_tqdm=False
        )
        latency = time.perf_counter() - t0
        result = []
        for i, (req, out) in enumerate(zip(requests, outs, strict=True)):
            for k, c in enumerate(out.outputs):
                ids = list(c.token_ids)
                lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [])]
                lps = [lp if lp is not None else 0.0 for lp in lps]
                result.append(
                    Completion(
                        text=c.text,
                        token_ids=ids,
                        logprobs=lps[: len(ids)],
                        finish_reason="length" if c.finish_reason == "length" else "stop",
                        prompt_tokens=len(out.prompt_token_ids or []),
                        completion_tokens=len(ids),
                        latency_s=latency,
                        adapter=req.adapter,
                        adapter_version=f"{req.adapter}@vllm" if req.adapter else "base",
                        request_index=i,
                        sample_index=k,
                    )
                )
        return result

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        from vllm import SamplingParams

        out = []
        for req, comp in zip(requests, completions, strict=True):
            prompt = self._prompt(req)
            ids = self.llm.get_tokenizer().encode(prompt["prompt"]) + list(comp.token_ids)
            res = self.llm.generate(
                [{**prompt, "prompt_token_ids": ids}],
                SamplingParams(max_tokens=1, prompt_logprobs=0),
                lora_request=self._lora(req.adapter),
                use_tqdm=False,
            )[0]
            plp = res.prompt_logprobs or []
            tail = plp[-len(comp.token_ids) :]
            out.append(
                [
                    d[t].logprob if d and t in d else 0.0
                    for d, t in zip(tail, comp.token_ids, strict=True)
                ]
            )
        return out


def _structured(prefixes: Sequence[str]) -> dict[str, Any]:
    """vLLM sampling arguments that make a completion begin with one of ``prefixes`` (guided
    decoding by regex, token by token: unlike the hf backend, not by whole-prefix
    likelihood). vLLM >= 0.12 names it ``structured_outputs``, older ones ``guided_decoding``.
    """
    if not prefixes:
        return {}
    import re

    regex = "(" + "|".join(re.escape(p) for p in prefixes) + r")[\s\S]*"
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(regex=regex)}
    return {"structured_outputs": StructuredOutputsParams(regex=regex)}


def _touches_vision(path: str | Path) -> bool:
    """Whether the adapter saved at ``path`` adapts the vision tower."""
    import json

    config = Path(path) / "adapter_config.json"
    return config.is_file() and touches_vision(json.loads(config.read_text()))
