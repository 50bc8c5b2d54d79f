"""Augmentations that keep a driving scene's meaning, batched on the device.

A random shift (DrQ: pad by replicating the border, crop back at a random offset) moves the whole scene, ego
included, so the ego's lane and its neighbours stay where they are relative to it; a small brightness jitter
changes no geometry. Nothing mirrors the frame: a flip would swap the left and right lanes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(
    frames: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None, lateral: bool = True
) -> torch.Tensor:
    """(B, C, W, H) uint8 or float -> float, each sample shifted by up to ``pad`` pixels along the road (W) and,
    if ``lateral``, across it (H); the same shift for every frame of a stack."""
    b, c, h, w = frames.shape
    padded = F.pad(frames.float(), (pad, pad, pad, pad), mode="replicate")
    draw_on = generator.device if generator is not None else frames.device  # a seeded stream on its own device
    shift = torch.randint(0, 2 * pad + 1, (b, 2), device=draw_on, generator=generator).to(frames.device)
    if not lateral:
        shift[:, 1] = pad  # centred across the road: lanes stay where they are relative to the frame
    rows = torch.arange(h, device=frames.device)[None, :] + shift[:, :1]
    cols = torch.arange(w, device=frames.device)[None, :] + shift[:, 1:]
    batch = torch.arange(b, device=frames.device)[:, None, None, None]
    channel = torch.arange(c, device=frames.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def brightness(frames: torch.Tensor, amount: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each sample's intensities by a factor in [1 - amount, 1 + amount], kept within [0, 255]."""
    scale = 1 + amount * (2 * torch.rand(frames.shape[0], 1, 1, 1, device=frames.device, generator=generator) - 1)
    return (frames.float() * scale).clamp(0, 255)


def augment(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The pretraining augmentation: random shift, then brightness; float frames in [0, 255]."""
    return brightness(random_shift(frames, generator=generator), generator=generator)
