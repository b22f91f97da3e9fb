"""The learning-rate schedule both training stages use: linear warm-up, then cosine decay to 10%."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, peak: float, max_warmup: int) -> float:
    """Warm up over 10% of the run (at most `max_warmup` steps), then decay along a half cosine to 0.1 * peak."""
    warmup = max(1, min(max_warmup, total // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
