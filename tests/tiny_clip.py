"""A tiny, randomly initialised CLIP (model, image processor, tokenizer) saved to a directory,
for tests of the index's optional vector search (test fixture code: it lives outside the
package). Loaded back through transformers' own ``from_pretrained``, as a real checkpoint is.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_tiny_clip"]

WORDS = (
    "red green blue yellow purple orange white black circle square triangle star "
    "top bottom left right centre middle nothing moment look"
)


def build_tiny_clip(path: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([WORDS], trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=16
    )
    text = {"vocab_size": fast.vocab_size, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 8}  # fmt: skip
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(path)
    return path
