"""highway-env's ``Kinematics`` observation (KinematicObservation.observe), batched.

Row 0 is the ego in absolute coordinates; then the nearest vehicles (by longitudinal distance, within the
200 m perception distance, and not more than 10 m behind unless ``see_behind``) relative to the ego; features
are mapped from their range to [-1, 1] and clipped; missing rows are zeros.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from drive.envs.batched import constants as C
from drive.envs.batched.state import TrafficState
from drive.errors import DriveError

FEATURES = ("presence", "x", "y", "vx", "vy", "heading", "cos_h", "sin_h")
DEFAULTS = {
    "type": "Kinematics",
    "features": ["presence", "x", "y", "vx", "vy"],
    "vehicles_count": 5,
    "features_range": None,
    "absolute": False,
    "order": "sorted",
    "normalize": True,
    "clip": True,
    "see_behind": False,
    "observe_intentions": False,
    "include_obstacles": True,
}
SUPPORTED = {"type", "features", "vehicles_count", "features_range", "absolute", "normalize", "clip", "see_behind"}


class KinematicsObserver:
    def __init__(self, observation: dict, lanes_count: int):
        config = {**DEFAULTS, **observation}
        for key, value in config.items():
            if key not in DEFAULTS:
                raise DriveError(f"unknown Kinematics observation key {key!r}; valid: {', '.join(DEFAULTS)}")
            if key not in SUPPORTED and value != DEFAULTS[key]:
                raise DriveError(f"the batched simulator supports Kinematics {key}={DEFAULTS[key]!r} only")
        bad = [f for f in config["features"] if f not in FEATURES]
        if bad:
            raise DriveError(f"unknown batched Kinematics feature {bad[0]!r}; valid: {', '.join(FEATURES)}")
        self.features = list(config["features"])
        self.count = int(config["vehicles_count"])
        self.absolute, self.normalize, self.clip = config["absolute"], config["normalize"], config["clip"]
        self.see_behind = config["see_behind"]
        self.ranges = config["features_range"] or {
            "x": [-5.0 * C.MAX_SPEED, 5.0 * C.MAX_SPEED],
            "y": [-C.LANE_WIDTH * lanes_count, C.LANE_WIDTH * lanes_count],
            "vx": [-2 * C.MAX_SPEED, 2 * C.MAX_SPEED],
            "vy": [-2 * C.MAX_SPEED, 2 * C.MAX_SPEED],
        }

    @property
    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, (self.count, len(self.features)), np.float32)

    def reset(self, state: TrafficState, mask: torch.Tensor) -> torch.Tensor:
        """The table depends on the current state only."""
        return self.observe(state)

    def observe(self, state: TrafficState) -> torch.Tensor:
        """(N, vehicles_count, len(features)) float32."""
        x = state.position[..., 0]
        dx = x - x[:, :1]
        distance = torch.linalg.norm(state.position - state.position[:, :1], dim=-1)
        visible = distance < C.PERCEPTION_DISTANCE
        visible[:, 0] = False
        if not self.see_behind:
            visible &= -2 * C.LENGTH < dx
        key = torch.where(visible, dx.abs(), math.inf)
        order = torch.sort(key, dim=1, stable=True).indices[:, : self.count - 1]
        shown = torch.gather(visible, 1, order)
        rows = torch.cat((torch.zeros_like(order[:, :1]), order), dim=1)
        present = torch.cat((torch.ones_like(shown[:, :1]), shown), dim=1)
        table = self._features(state, rows)
        if not self.absolute:
            origin = table[:, :1].clone()
            relative = torch.zeros(len(self.features), dtype=torch.bool, device=table.device)
            for i, name in enumerate(self.features):
                relative[i] = name in ("x", "y", "vx", "vy")
            table[:, 1:] = torch.where(relative, table[:, 1:] - origin, table[:, 1:])
        if self.normalize:
            for i, name in enumerate(self.features):
                if name in self.ranges:
                    low, high = self.ranges[name]
                    table[..., i] = -1 + (table[..., i] - low) * 2 / (high - low)
                    if self.clip:
                        table[..., i] = table[..., i].clamp(-1, 1)
        return torch.where(present[..., None], table, 0.0).float()

    def _features(self, state: TrafficState, rows: torch.Tensor) -> torch.Tensor:
        position = torch.gather(state.position, 1, rows[..., None].expand(-1, -1, 2))
        heading = torch.gather(state.heading, 1, rows)
        speed = torch.gather(state.speed, 1, rows)
        values = {
            "presence": torch.ones_like(heading),
            "x": position[..., 0],
            "y": position[..., 1],
            "vx": speed * torch.cos(heading),
            "vy": speed * torch.sin(heading),
            "heading": heading,
            "cos_h": torch.cos(heading),
            "sin_h": torch.sin(heading),
        }
        return torch.stack([values[name] for name in self.features], dim=-1)
