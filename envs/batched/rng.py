"""Counter-based random numbers: each environment has its own stream, the same on every device.

A draw is a hash of (env seed, episode count, draw id), so resetting some environments never moves the
random streams of the others, and a seed gives the same numbers on CPU and CUDA.
"""

from __future__ import annotations

import torch

_MASK = 0xFFFFFFFF


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 32-bit finaliser on int64 tensors holding uint32 values."""
    h = h & _MASK
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def uniform(seed: torch.Tensor, episode: torch.Tensor, draws: int, stream: int, dtype=torch.float32) -> torch.Tensor:
    """``(len(seed), draws)`` uniforms in [0, 1) for each env's (seed, episode), stream ``stream``."""
    key = _fmix32(_fmix32(seed.long() ^ 0x9E3779B9) + episode.long() * 0x632BE5AB + stream * 0x85157AF5)
    counter = torch.arange(draws, device=seed.device, dtype=torch.long)
    bits = _fmix32(key[:, None] * 0x27D4EB2F + counter[None, :] * 0x165667B1 + 0x61C88647)
    bits = _fmix32(bits ^ key[:, None])
    return (bits >> 8).to(dtype) / 16777216.0  # 24 bits: exact in float32, strictly below 1
