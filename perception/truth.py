"""The simulator's ground truth for a frame: the targets of encoder probes, and of the driver's auxiliary head
(``lane_gaps``: the student learns to read them from its frames while it imitates the teacher; pretraining
never reads the state's truth, and of the rollout's only SPR reads the recorded ``action``).

Computed from a batched ``TrafficState`` (highway-env states are loaded into one with ``highway_state.snapshot``), so
every engine labels frames with one definition; ``ground_truth`` reads only its ``position``, ``lane`` and ``speed``,
which is what EnvPool's debug states give (``EnvPoolVecEnv.traffic``). Lane 0 is the leftmost lane (highway-env's
LANE_LEFT lowers the lane index).
"""

from __future__ import annotations

import torch

from drive.envs.batched.state import TrafficState

FRONT_RANGE = 50.0  # [m] about what a pixels frame shows ahead of the ego; no vehicle ahead reads as this
SIDE_RANGE = 15.0  # [m] a neighbouring lane is occupied by a vehicle within this distance ahead or behind
STATE_TARGETS = {  # name -> kind: the probe fits a classifier or a regression; read off the state (ground_truth)
    "lane": "class",
    "speed": "regression",
    "front_distance": "regression",
    "front_relative_speed": "regression",
    "left_occupied": "class",
    "right_occupied": "class",
}
# Recorded by the rollout at collection (``drive.perception.collect``), not read off the state: the collecting
# policy's action (DiscreteMetaAction index, 0..4) and the reward it earned from that frame, and, on the batched
# backend, the action the IDM/MOBIL driver would take there. Frame stores collected before them, or on a backend
# without them, lack these keys, and the probes skip what a store lacks.
ROLLOUT_TARGETS = {"action": "class", "reward": "regression", "idm_action": "class"}
TARGETS = {**STATE_TARGETS, **ROLLOUT_TARGETS}


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


REAR_RANGE = 20.0  # [m] about what a pixels frame shows behind the ego (it is drawn 30 % along the frame)
SPEED_SCALE = 10.0  # [m/s] closing speeds and the ego's speed above 20 m/s are given in this unit
GAP_NAMES = (
    *(
        f"{lane}_{what}"
        for lane in ("left", "own", "right")
        for what in ("front_gap", "front_closing", "rear_gap", "rear_closing")
    ),
    "ego_speed",
)


def lane_gaps(state: TrafficState, lanes_count: int) -> torch.Tensor:
    """(N, 13) float32, in ``GAP_NAMES``'s order, each about in [-1, 1]: for the lane left of the ego, its own and
    the one right of it, the gap to the nearest vehicle ahead over ``FRONT_RANGE`` and how fast the ego closes it
    over ``SPEED_SCALE``, then the same behind (``REAR_RANGE``; closing: the rear vehicle's speed minus the
    ego's); then the ego's speed minus 20 m/s over ``SPEED_SCALE``. No vehicle in range reads as a gap of 1 and a
    closing speed of 0; a lane off the road as a gap of 0 (blocked) and a closing speed of 0.

    These are what decides whether FASTER or a lane change is safe: the driver's student regresses them from its
    frames beside its imitation loss (the privileged auxiliary targets of Learning by Cheating).
    """
    lane, speed = state.lane[:, :1], state.speed
    dx = state.position[:, 1:, 0] - state.position[:, :1, 0]
    columns = []
    for offset in (-1, 0, 1):
        in_lane = state.lane[:, 1:] == lane + offset
        for sign, reach in ((1.0, FRONT_RANGE), (-1.0, REAR_RANGE)):
            ahead = sign * dx
            near = in_lane & (ahead > 0) & (ahead <= reach)
            gap, index = torch.where(near, ahead, torch.inf).min(1)
            found = torch.isfinite(gap)
            other = speed[:, 1:].gather(1, index[:, None])[:, 0]
            closing = sign * (speed[:, 0] - other)
            on_road = ((lane[:, 0] + offset) >= 0) & ((lane[:, 0] + offset) < lanes_count)
            columns.append(torch.where(on_road, torch.where(found, gap / reach, 1.0), 0.0))
            columns.append(torch.where(found & on_road, closing / SPEED_SCALE, 0.0))
    columns.append((speed[:, 0] - 20.0) / SPEED_SCALE)
    return torch.stack(columns, 1).float()
