"""Reset: highway-env's HighwayEnv._create_vehicles, batched.

The ego comes first, then each other vehicle is placed ahead of the last one (Vehicle.create_random):
a random lane, a speed uniform in [0.7, 0.8] of the 30 m/s limit, and a gap of
``spacing * (12 + speed) * exp(-5/40 * lanes) * U(0.9, 1.1)``. The ego starts at 25 m/s, ``3 * offset`` plus
one gap from the origin. Each IDM vehicle gets an exponent DELTA ~ U(3.5, 4.5) and the lane-change timer
``(x + y) * pi mod 1``.
"""

from __future__ import annotations

import math

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.config import BatchedConfig
from drive.envs.batched.dynamics import closest_lane
from drive.envs.batched.rng import uniform
from drive.envs.batched.state import TrafficState

EGO_SPEED = 25.0  # HighwayEnv._create_vehicles


def spawn(config: BatchedConfig, seed: torch.Tensor, episode: torch.Tensor, dtype=torch.float32) -> TrafficState:
    """Fresh traffic for len(seed) environments, from each env's (seed, episode) random stream."""
    n_envs, n_vehicles, lanes = seed.shape[0], config.vehicles_count + 1, config.lanes_count
    device = seed.device
    u = uniform(seed, episode, 4 * n_vehicles, stream=1, dtype=dtype).reshape(n_envs, 4, n_vehicles)
    lane = torch.floor(u[:, 0] * lanes).long().clamp(max=lanes - 1)
    if config.initial_lane_id is not None:
        lane[:, 0] = int(config.initial_lane_id)
    speed = 0.7 * C.SPEED_LIMIT + (0.8 - 0.7) * C.SPEED_LIMIT * u[:, 1]
    speed[:, 0] = EGO_SPEED
    spacing = torch.full_like(speed, 1.0 / config.vehicles_density)
    spacing[:, 0] = config.ego_spacing
    offset = spacing * (12 + speed) * math.exp(-5 / 40 * lanes)
    gaps = offset * (0.9 + 0.2 * u[:, 2])
    gaps[:, 0] = gaps[:, 0] + 3 * offset[:, 0]
    x = torch.cumsum(gaps, dim=1)
    y = C.LANE_WIDTH * lane.to(dtype)
    position = torch.stack((x, y), dim=-1)
    delta = C.DELTA_RANGE[0] + (C.DELTA_RANGE[1] - C.DELTA_RANGE[0]) * u[:, 3]
    zeros = torch.zeros((n_envs, n_vehicles), dtype=dtype, device=device)
    lane = closest_lane(y, lanes)
    return TrafficState(
        position=position,
        heading=zeros.clone(),
        speed=speed,
        lane=lane,
        target_lane=lane.clone(),
        target_speed=speed.clone(),
        steering=zeros.clone(),
        acceleration=zeros.clone(),
        crashed=torch.zeros((n_envs, n_vehicles), dtype=torch.bool, device=device),
        impact=torch.zeros((n_envs, n_vehicles, 2), dtype=dtype, device=device),
        has_impact=torch.zeros((n_envs, n_vehicles), dtype=torch.bool, device=device),
        delta=delta,
        timer=torch.remainder((x + y) * math.pi, C.LANE_CHANGE_DELAY),
        speed_index=torch.ones(n_envs, dtype=torch.long, device=device),  # 25 m/s is target speed 1
        time=torch.zeros(n_envs, dtype=dtype, device=device),
        steps=torch.zeros(n_envs, dtype=torch.long, device=device),
    )
