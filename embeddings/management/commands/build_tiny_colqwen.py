"""Build a tiny random ColQwen2.5 (the real architecture, tiny dims) offline and save_pretrained it.

The result loads through the same from_pretrained path as vidore/colqwen2.5-v0.2: Qwen2.5-VL config,
a small byte-level BPE tokenizer trained here with the Qwen special tokens, the (PIL) image processor.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]
CORPUS = [
    "What is the revenue of the company in 2023?", "Describe the image.", "The quarterly report shows growth.",
    "Invoice total amount due date customer address", "user assistant system", "Photosynthesis in plants",
    "the a of and to in is for on with as by at from that this be are was it or an",
] * 20


def build_tiny_colqwen(path: str | Path, *, seed: int = 0) -> Path:
    import torch

    from embeddings.embedders.compat import ensure_colpali_importable

    ensure_colpali_importable()
    from colpali_engine.models import ColQwen2_5
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.save_pretrained(path)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=56 * 56, max_pixels=28 * 28 * 64, patch_size=14, temporal_patch_size=2, merge_size=2,
    )
    image_processor.save_pretrained(path)

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
            "fullatt_block_indexes": [1], "in_channels": 3,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = ColQwen2_5(config)
    model.save_pretrained(path)
    (path / "layra_tiny.json").write_text(json.dumps({"tiny": True, "seed": seed}))
    return path


class Command(BaseCommand):
    help = "Build a tiny random ColQwen2.5 (offline) into PATH, loadable with from_pretrained."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        path = build_tiny_colqwen(options["path"], seed=options["seed"])
        self.stdout.write(str(path))
