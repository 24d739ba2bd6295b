"""Device memory: what a forward's activations take, and what is free.

Behind the sizes the toolkit picks by itself: masked evaluation's masks per forward
(``masked_eval.auto_masks_per_forward``) and the jobs that ``--multi_prompt`` trains together
(``multi_prompt.waves``). The estimates are deliberately high (float32, doubled for the
allocator's slack): a size that fits a smaller estimate can still fail, one that fits this rarely.
"""

from __future__ import annotations

import torch

from model_emotion.lm.neurons import find_ffn


def activation_bytes(model, width: int) -> int:
    """Bytes of one token's activations in one block of ``model``'s backbone, at sequence ``width``.

    The FFN's up output (and a gated MLP's gate), a few hidden-size tensors and one row of
    attention scores per head, in float32, doubled for the allocator's slack.
    """
    config = model.backbone.config
    return 2 * 4 * (2 * find_ffn(model).d_ffn + 8 * config.hidden_size + config.num_attention_heads * width)


def free_bytes(device: torch.device) -> int | None:
    """Free memory of a CUDA device; None elsewhere (host memory is not bounded here)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)
