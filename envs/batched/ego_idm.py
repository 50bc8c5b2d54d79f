"""The IDM/MOBIL baseline driver for the ego, batched: the same decisions as ``drive.agents.baselines.IDMPolicy``.

A stand-in IDM vehicle at the ego's state (highway-env's default exponent, the top target speed as desired
speed) checks MOBIL on the left then the right lane, and otherwise turns its IDM acceleration over one policy
period into the nearest target speed.
"""

from __future__ import annotations

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.dynamics import Frame, idm_acceleration, mobil, neighbours
from drive.envs.batched.simulator import BatchedHighway

IDM_DELTA = 4.0  # IDMVehicle.DELTA, not randomised for a vehicle made with create_from


def idm_meta_actions(sim: BatchedHighway) -> torch.Tensor:
    """(N,) DiscreteMetaAction indices."""
    s, lanes = sim.state, sim.config.lanes_count
    frame = Frame.of(s)
    frame.target_speed = frame.target_speed.clone()
    frame.target_speed[:, 0] = min(max(C.TARGET_SPEEDS), C.SPEED_LIMIT)
    n = s.num_envs
    env = torch.arange(n, device=sim.device)
    ego = torch.zeros(n, dtype=torch.long, device=sim.device)
    delta = torch.full((n,), IDM_DELTA, dtype=s.speed.dtype, device=sim.device)
    lane = s.lane[:, 0]
    front, rear = neighbours(frame, env, ego, lane)
    acc = idm_acceleration(frame, env, ego, front, delta)
    wanted = s.speed[:, 0] + acc / sim.config.policy_frequency
    nearest = (sim.target_speeds[None, :] - wanted[:, None]).abs().argmin(-1)
    action = torch.full((n,), C.IDLE, dtype=torch.long, device=sim.device)
    action = torch.where(nearest > s.speed_index, C.FASTER, action)
    action = torch.where(nearest < s.speed_index, C.SLOWER, action)

    may_change = (lane == s.target_lane[:, 0]) & (s.speed[:, 0].abs() >= 1) & (frame.x[:, 0] >= 0)
    chosen = torch.full((n,), -1, dtype=torch.long, device=sim.device)
    for side, meta in ((1, C.LANE_RIGHT), (-1, C.LANE_LEFT)):  # left is checked first: let it overwrite
        candidate = lane + side
        ok = may_change & (candidate >= 0) & (candidate < lanes)
        ok &= mobil(frame, delta, env, ego, candidate.clamp(0, lanes - 1), front, rear)
        chosen = torch.where(ok, meta, chosen)
    return torch.where(chosen >= 0, chosen, action)
