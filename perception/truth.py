"""The simulator's ground truth for a frame, for probing encoders only (pretraining never reads it).

Computed from a batched ``TrafficState`` (highway-env states are loaded into one with ``highway_state.snapshot``), so
both backends label frames with one definition. Lane 0 is the leftmost lane (highway-env's LANE_LEFT lowers
the lane index).
"""

from __future__ import annotations

import torch

from drive.envs.batched.state import TrafficState

FRONT_RANGE = 50.0  # [m] about what a pixels frame shows ahead of the ego; no vehicle ahead reads as this
SIDE_RANGE = 15.0  # [m] a neighbouring lane is occupied by a vehicle within this distance ahead or behind
TARGETS = {  # name -> kind: the probe fits a classifier or a regression
    "lane": "class",
    "speed": "regression",
    "front_distance": "regression",
    "front_relative_speed": "regression",
    "left_occupied": "class",
    "right_occupied": "class",
}


def ground_truth(state: TrafficState) -> dict[str, torch.Tensor]:
    """(N,) per target, for the ego (vehicle 0) of every env."""
    lane = state.lane[:, 0]
    dx = state.position[:, 1:, 0] - state.position[:, :1, 0]
    others = state.lane[:, 1:]
    ahead = (others == lane[:, None]) & (dx > 0) & (dx <= FRONT_RANGE)
    distance, front = torch.where(ahead, dx, torch.full_like(dx, torch.inf)).min(1)
    has_front = torch.isfinite(distance)
    front_speed = state.speed[:, 1:].gather(1, front[:, None])[:, 0]
    near = dx.abs() <= SIDE_RANGE
    return {
        "lane": lane.long(),
        "speed": state.speed[:, 0].float(),
        "front_distance": torch.where(has_front, distance, FRONT_RANGE).float(),
        "front_relative_speed": torch.where(has_front, front_speed - state.speed[:, 0], 0.0).float(),
        "left_occupied": ((others == lane[:, None] - 1) & near).any(1).long(),
        "right_occupied": ((others == lane[:, None] + 1) & near).any(1).long(),
    }
