"""Encoder checkpoints: the weights and what is needed to use them (architecture, input shape, normalisation)."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from drive.errors import DriveError
from drive.perception.encoders import ENCODERS

FORMAT = "drive-encoder/1"
NORMALISATION = "uint8 frames / 255, inside the encoder"


def frame_space(shape) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, tuple(int(s) for s in shape), np.uint8)


def make_encoder(name: str, shape, features_dim: int | None = None, seed: int | None = None) -> torch.nn.Module:
    """An untrained ``ENCODERS[name]`` for frame stacks of ``shape``; ``features_dim`` None: the class's own width."""
    if seed is not None:
        torch.manual_seed(seed)
    width = {} if features_dim is None else {"features_dim": features_dim}
    return ENCODERS[name](frame_space(shape), **width)


def save_encoder(path: str | Path, encoder: torch.nn.Module, name: str, shape, **metadata) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "encoder": name,
        "features_dim": encoder.features_dim,
        "observation_shape": [int(s) for s in shape],
        "normalisation": NORMALISATION,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        **metadata,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_encoder(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The encoder module (eval mode) and its metadata; one clear line if the file is not an encoder."""
    path = Path(path)
    if not path.is_file():
        raise DriveError(f"encoder {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds on a corrupt file
        raise DriveError(f"encoder {str(path)!r} is not a readable encoder checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DriveError(f"encoder {str(path)!r} is not a drive encoder checkpoint (format {FORMAT})")
    encoder = make_encoder(payload["encoder"], payload["observation_shape"], payload["features_dim"])
    encoder.load_state_dict(payload["state_dict"])
    metadata = {k: v for k, v in payload.items() if k != "state_dict"}
    return encoder.to(device).eval(), metadata


def check_fits(metadata: dict, observation_space: gym.Space, where: str) -> None:
    """Refuse an encoder whose input shape is not the env's observation shape."""
    expected = list(getattr(observation_space, "shape", ()) or ())
    if metadata["observation_shape"] != expected:
        raise DriveError(
            f"encoder {where} takes frames shaped {tuple(metadata['observation_shape'])}, but the env gives "
            f"{tuple(expected)}; valid: an encoder pretrained on frames of this env's --obs pixels preset"
        )
