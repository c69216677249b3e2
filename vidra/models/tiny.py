"""Build a tiny Qwen2.5-VL offline: the real classes, a locally trained byte-level BPE
tokenizer with Qwen's special tokens and chat template, and the stock processor.

Seconds to build, a few MB on disk; reloads with ``from_pretrained`` and HF_HUB_OFFLINE=1.
It is randomly initialised: `vidra model train-tiny` (later) teaches it the synthetic world.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from vidra.errors import ConfigError

__all__ = ["CHAT_TEMPLATE", "SIZES", "SPECIAL_TOKENS", "TinySpec", "build_tiny", "domain_corpus"]

log = logging.getLogger(__name__)

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip

# Qwen2-VL's chat template: text, images and videos inside <|im_start|>role ... <|im_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny Qwen2.5-VL."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vocab: int
    rope_theta: float = 100.0  # 1e6 cannot tell positions apart at head dim 32
    min_pixels: int = 28 * 28 * 4  # 56 x 56
    max_pixels: int = 28 * 28 * 16  # 112 x 112: at most 16 tokens per image
    max_positions: int = 8192


SIZES: dict[str, TinySpec] = {
    "xs": TinySpec(hidden=128, layers=2, heads=4, kv_heads=2, intermediate=256,
                   vision_hidden=64, vision_depth=2, vision_heads=2, vocab=1024),
    # xs with a 4-block, 128-wide vision tower: vidra-tiny. Perception is what the tiny
    # agents lack, and on at most 24 visual tokens per frame the tower costs little. A 160 x 90
    # frame is seen whole (168 x 84: 18 tokens; 112 px gave 8): a captioner-only pilot's
    # held-out object precision went 0.39 -> 0.72 with that alone.
    "xsv": TinySpec(hidden=128, layers=2, heads=4, kv_heads=2, intermediate=256,
                    vision_hidden=128, vision_depth=4, vision_heads=4, vocab=1024,
                    max_pixels=28 * 28 * 24),
    "s": TinySpec(hidden=256, layers=4, heads=8, kv_heads=4, intermediate=512,
                  vision_hidden=128, vision_depth=4, vision_heads=4, vocab=2048),
}  # fmt: skip


def domain_corpus() -> Iterator[str]:
    """Text the tokenizer is trained on: the synthetic world's questions, answers, prompts."""
    from vidra.video.synthetic import (
        COLOURS,
        QUADRANTS,
        SHAPES,
        WorldSpec,
        generate_questions,
        make_world,
    )

    words = [*COLOURS, *SHAPES, *QUADRANTS, "nothing", "frame", "frames", "seconds", "time"]
    yield " ".join(words)
    for seed in range(6):
        world = make_world(WorldSpec(duration=900, seed=seed, needles=2))
        for q in generate_questions(world, per_kind=4):
            yield q.text
            yield " | ".join(q.options)
            yield json.dumps(
                {
                    "answer": q.answer,
                    "choice": q.answer_index,
                    "confidence": 0.9,
                    "evidence": [round(t, 1) for t in q.evidence],
                }
            )
    for role in ("planner", "selector", "reasoner", "critic", "system", "user", "assistant"):
        yield f"You are the {role}. Reply with JSON only."
    yield json.dumps(
        {
            "segments": [[12.5, 30.0]],
            "frames": [1.5, 2.0],
            "accept": True,
            "score": 0.75,
            "feedback": "look later",
            "look_for": "red circle",
            "sub_questions": ["when?"],
            "budget": 16,
        }
    )
    yield " ".join(
        f"{m}:{s:02d} {m}:{s:04.1f}s t={m * 60 + s}" for m in range(60) for s in (0, 15, 30, 45)
    )
    yield "0123456789 . , : ; - ( ) [ ] { } \" ' ? ! A B C D E 1 2 3 4 5 6 7 8 9 10"


def _tokenizer(spec: TinySpec) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(domain_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=spec.max_positions,
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny(path: str | Path, size: str = "xs", seed: int = 0) -> Path:
    """Build and save a tiny, randomly initialised Qwen2.5-VL with its processor at ``path``.

    Raises:
        ConfigError: unknown ``size``.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown tiny size {size!r}; choose one of {sorted(SIZES)}")
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    spec = SIZES[size]
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(spec)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.hidden // spec.heads
    half = head_dim // 2
    mrope = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": spec.hidden,
            "intermediate_size": spec.intermediate,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.kv_heads,
            "max_position_embeddings": spec.max_positions,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": spec.rope_theta,
                "mrope_section": mrope,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden,
            "intermediate_size": spec.vision_hidden * 2,
            "num_heads": spec.vision_heads,
            "out_hidden_size": spec.hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "tokens_per_second": 2,
            "fullatt_block_indexes": [spec.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out, safe_serialization=True)
    pixels: dict[str, Any] = {"min_pixels": spec.min_pixels, "max_pixels": spec.max_pixels}
    processor = Qwen2_5_VLProcessor(
        image_processor=cast(Any, Qwen2VLImageProcessor)(**pixels),
        video_processor=cast(Any, Qwen2VLVideoProcessor)(**pixels),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    (out / "vidra_tiny.json").write_text(json.dumps({"size": size, "seed": seed, **asdict(spec)}))
    log.info("built tiny Qwen2.5-VL (%s) at %s", size, out)
    return out
